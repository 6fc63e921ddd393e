"""The model's /proc/PID/smaps and page map (~ fs/proc/task_mmu.c), computed from its page
tables and folios as the kernel computes them, into the types both backends share
(mmlab.proc)."""

from __future__ import annotations

from ..include.mm import VM_LOCKED, VM_READ, VM_WRITE, folio_precise_page_mapcount, is_zero_folio, vma_flags_str
from ..include.page_flags import PG, folio_test_dirty
from ..include.pgtable import PmdHuge, pmd_index, pte_index
from ..proc import SMAPS_FIELDS, PageInfo, Smaps, SmapsVma
from ..uapi import HPAGE_PMD_SIZE, PAGE_SIZE


def _smaps_account(acc: dict, folio, page: int, nr: int, dirty_entry: bool, young: bool, locked: bool) -> None:
    """smaps_account(): add ``nr`` pages of ``folio`` starting at ``page`` to a VMA's fields."""
    size = nr * 4
    dirty = dirty_entry or bool(folio_test_dirty(folio))
    acc["Rss"] += size
    if folio.flags & PG.anon:
        acc["Anonymous"] += size
        if not folio.flags & PG.swapbacked and not dirty:
            acc["LazyFree"] += size
    if young or folio.flags & PG.referenced:
        acc["Referenced"] += size
    for i in range(page, page + nr):
        mapcount = folio_precise_page_mapcount(folio, i)
        shared = mapcount >= 2
        pss = 4 / mapcount if shared else 4
        acc["Pss"] += pss
        if locked:
            acc["Locked"] += pss
        acc[("Shared_" if shared else "Private_") + ("Dirty" if dirty else "Clean")] += 4


def smaps_of(mm) -> Smaps:
    """/proc/PID/smaps of a model mm, computed from its page tables as the kernel does."""
    vmas = []
    for vma in mm.vmas:
        acc = dict.fromkeys(SMAPS_FIELDS, 0.0)
        acc["Size"] = (vma.vm_end - vma.vm_start) // 1024
        locked = bool(vma.vm_flags & VM_LOCKED)
        for index in range(pmd_index(vma.vm_start), pmd_index(vma.vm_end - 1) + 1):
            entry = mm.pmds.get(index)
            if entry is None:
                continue
            if isinstance(entry, PmdHuge):
                if not is_zero_folio(entry.folio):
                    _smaps_account(acc, entry.folio, 0, entry.folio.nr_pages, entry.dirty, entry.young, locked)
                    acc["AnonHugePages"] += HPAGE_PMD_SIZE // 1024
                continue
            lo = max(vma.vm_start, index << 21)
            hi = min(vma.vm_end, (index + 1) << 21)
            for pte in entry.ptes[pte_index(lo):pte_index(hi - 1) + 1]:
                if pte is not None and not is_zero_folio(pte.folio):
                    _smaps_account(acc, pte.folio, pte.page, 1, pte.dirty, pte.young, locked)
        fields = {name: int(acc[name]) for name in SMAPS_FIELDS}
        perms = ("r" if vma.vm_flags & VM_READ else "-") + ("w" if vma.vm_flags & VM_WRITE else "-") + "-p"
        vmas.append(SmapsVma(vma.vm_start, vma.vm_end, perms, fields, tuple(vma_flags_str(vma.vm_flags).split())))
    return Smaps(vmas)


def pagemap_of(mm, start: int, length: int) -> list[PageInfo]:
    """pagemap + kpageflags + kpagecount for every page of [start, start + length)."""
    pages = []
    for addr in range(start, start + length, PAGE_SIZE):
        entry = mm.pmds.get(pmd_index(addr))
        if isinstance(entry, PmdHuge):
            folio, page, pmd_mapped = entry.folio, (addr % HPAGE_PMD_SIZE) // PAGE_SIZE, True
        else:
            pte = entry.ptes[pte_index(addr)] if entry is not None else None
            if pte is None:
                pages.append(PageInfo(addr, present=False))
                continue
            folio, page, pmd_mapped = pte.folio, pte.page, False
        f = folio.flags
        zero = bool(f & PG.zero)
        pages.append(PageInfo(
            addr, True, pfn=folio.pfn + page, thp=folio.order >= 9, pmd_mapped=pmd_mapped,
            zero_page=zero, dirty=bool(f & PG.dirty), swapbacked=bool(f & PG.swapbacked),
            mlocked=bool(f & PG.mlocked), unevictable=bool(f & PG.unevictable), lru=bool(f & PG.lru),
            active=bool(f & PG.active), anon=bool(f & PG.anon),
            mapcount=0 if zero else folio_precise_page_mapcount(folio, page),
        ))
    return pages
