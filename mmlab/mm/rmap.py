"""Reverse mapping: mapcounts, anon_vma chains, rmap_walk, try_to_unmap and folio_referenced
(~ mm/rmap.c).

The mapcount rules are 6.12's (and unchanged in what the course shows through 6.18): a PMD
mapping counts once in ``_entire_mapcount`` and once in ``_large_mapcount``; a PTE mapping
counts in the page's ``_mapcount`` and in ``_large_mapcount``. ``_nr_pages_mapped`` counts
pages mapped by at least one PTE (the kernel adds a bias to it while a PMD maps the folio;
the model keeps the two apart).
"""

from __future__ import annotations

from ..include.mm_types import (
    VM_LOCKED,
    AnonVma,
    AnonVmaChain,
    folio_mapcount,
    folio_ref_count,
    vma_address,
)
from ..include.page_flags import (
    PG,
    folio_set_dirty,
    folio_set_swapbacked,
    folio_test_anon,
    folio_test_dirty,
    folio_test_large,
    folio_test_lazyfree,
    folio_test_partially_mapped,
    folio_test_swapbacked,
)
from ..include.pgtable import pte_index
from ..state import current, kernel, trace
from ..uapi import HPAGE_PMD_NR, HPAGE_PMD_SIZE, PAGE_SIZE
from .huge_memory import split_huge_pmd_address, split_huge_pmd_locked, unmap_huge_pmd_locked
from .mlock import mlock_vma_folio, munlock_vma_folio
from .page_alloc import ModelBug, folio_put_refs
from .page_vma_mapped import (
    PVMW_PGTABLE_CROSSED,
    PVMW_SYNC,
    PageVmaMappedWalk,
    page_vma_mapped_walk,
    page_vma_mapped_walk_done,
    page_vma_mapped_walk_restart,
)

# enum ttu_flags (include/linux/rmap.h)
TTU_SPLIT_HUGE_PMD = 0x4
TTU_IGNORE_MLOCK = 0x8
TTU_SYNC = 0x10
TTU_BATCH_FLUSH = 0x40

TTU_NAMES = {TTU_SPLIT_HUGE_PMD: "TTU_SPLIT_HUGE_PMD", TTU_IGNORE_MLOCK: "TTU_IGNORE_MLOCK",
             TTU_SYNC: "TTU_SYNC", TTU_BATCH_FLUSH: "TTU_BATCH_FLUSH"}


def ttu_flags_str(flags: int) -> str:
    return " | ".join(name for bit, name in TTU_NAMES.items() if flags & bit) or "0"


# ---------------------------------------------------------------- anon_vma


def anon_vma_alloc(parent: AnonVma | None = None) -> AnonVma:
    machine = current.machine
    machine.next_anon_vma_id += 1
    av = AnonVma(id=machine.next_anon_vma_id, parent=parent)
    av.root = parent.root if parent else av
    return av


def anon_vma_chain_link(vma, anon_vma: AnonVma) -> None:
    avc = AnonVmaChain(vma, anon_vma)
    vma.anon_vma_chain.append(avc)
    anon_vma.rb_root.append(avc)


def anon_vma_prepare(vma) -> AnonVma:
    """Give a VMA its anon_vma the first time an anonymous folio is faulted into it."""
    if vma.anon_vma is None:
        vma.anon_vma = anon_vma_alloc()
        anon_vma_chain_link(vma, vma.anon_vma)
    return vma.anon_vma


def anon_vma_clone(dst, src) -> None:
    """Link ``dst`` to every anon_vma ``src`` is linked to (VMA split, and fork's first step)."""
    for avc in src.anon_vma_chain:
        anon_vma_chain_link(dst, avc.anon_vma)
    dst.anon_vma = src.anon_vma if dst.vm_mm is src.vm_mm else None


def anon_vma_fork(vma, parent_vma) -> None:
    """fork: the child's VMA reaches the parent's anon_vmas (folios faulted before the fork)
    and gets one of its own, a child of the parent's, for folios it faults or copies later."""
    if parent_vma.anon_vma is None:
        return
    anon_vma_clone(vma, parent_vma)
    vma.anon_vma = anon_vma_alloc(parent=parent_vma.anon_vma)
    anon_vma_chain_link(vma, vma.anon_vma)


def unlink_anon_vmas(vma) -> None:
    for avc in vma.anon_vma_chain:
        avc.anon_vma.rb_root.remove(avc)
    vma.anon_vma_chain.clear()


# ---------------------------------------------------------------- mapcounts


def __folio_mod_stat(folio, nr: int, nr_pmdmapped: int) -> None:
    vmstat = current.machine.vmstat
    vmstat["nr_anon_pages"] += nr
    if nr_pmdmapped:
        vmstat["nr_anon_transparent_hugepages"] += nr_pmdmapped // HPAGE_PMD_NR


def _add_ptes(folio, page: int, nr_pages: int) -> int:
    """Count PTE mappings of pages [page, page + nr_pages); return how many became mapped."""
    if not folio_test_large(folio):
        folio._mapcount[0] += 1
        return int(folio._mapcount[0] == 0)
    folio._large_mapcount += nr_pages
    first = 0
    mapcount = folio._mapcount
    for i in range(page, page + nr_pages):
        mapcount[i] += 1
        if mapcount[i] == 0:
            first += 1
    folio._nr_pages_mapped += first
    return 0 if folio._entire_mapcount >= 0 else first


def folio_add_anon_rmap_ptes(folio, page: int, nr_pages: int, vma, exclusive: bool) -> None:
    nr = _add_ptes(folio, page, nr_pages)
    if exclusive:
        folio.anon_exclusive[page:page + nr_pages] = b"\x01" * nr_pages
    __folio_mod_stat(folio, nr, 0)
    if not folio_test_large(folio):
        mlock_vma_folio(folio, vma)


def folio_add_anon_rmap_pmd(folio, vma, exclusive: bool) -> None:
    folio._large_mapcount += 1
    folio._entire_mapcount += 1
    nr = nr_pmdmapped = 0
    if folio._entire_mapcount == 0:
        nr_pmdmapped = folio.nr_pages
        nr = nr_pmdmapped - folio._nr_pages_mapped
    if exclusive:
        folio.anon_exclusive[:] = b"\x01" * folio.nr_pages
    __folio_mod_stat(folio, nr, nr_pmdmapped)


def folio_add_new_anon_rmap(folio, vma, address: int) -> None:
    """A freshly allocated anon folio gets its anon_vma, its index and its first mapping."""
    folio.anon_vma = vma.anon_vma
    folio.index = ((address - vma.vm_start) // PAGE_SIZE) + vma.vm_pgoff
    folio.flags |= PG.swapbacked | PG.anon
    if folio.order == 9:
        folio_add_anon_rmap_pmd(folio, vma, exclusive=True)
    else:
        # Not folio_add_anon_rmap_ptes(): a new folio is mlocked by folio_add_lru_vma()
        # (mlock_new_folio), not here.
        folio._mapcount[0] = 0
        folio.anon_exclusive[0] = 1
        __folio_mod_stat(folio, 1, 0)


def __folio_remove_rmap(folio, page: int, nr_pages: int, vma, pmd: bool) -> None:
    partially_mapped = False
    nr = nr_pmdmapped = 0
    if not folio_test_large(folio):
        folio._mapcount[0] -= 1
        nr = int(folio._mapcount[0] < 0)
    elif pmd:
        folio._large_mapcount -= 1
        folio._entire_mapcount -= 1
        if folio._entire_mapcount < 0:
            nr_pmdmapped = folio.nr_pages
            nr = nr_pmdmapped - folio._nr_pages_mapped
            partially_mapped = 0 < nr < nr_pmdmapped
    else:
        folio._large_mapcount -= nr_pages
        last = 0
        mapcount = folio._mapcount
        for i in range(page, page + nr_pages):
            mapcount[i] -= 1
            if mapcount[i] < 0:
                last += 1
        folio._nr_pages_mapped -= last
        if folio._entire_mapcount < 0:
            nr = last
        partially_mapped = bool(nr) and folio._nr_pages_mapped > 0
    if partially_mapped and folio_test_anon(folio) and not folio_test_partially_mapped(folio):
        from .huge_memory import deferred_split_folio

        deferred_split_folio(folio, partially_mapped=True)
    __folio_mod_stat(folio, -nr, -nr_pmdmapped)
    munlock_vma_folio(folio, vma)


def folio_remove_rmap_ptes(folio, page: int, nr_pages: int, vma) -> None:
    __folio_remove_rmap(folio, page, nr_pages, vma, pmd=False)


def folio_remove_rmap_pmd(folio, vma) -> None:
    __folio_remove_rmap(folio, 0, folio.nr_pages, vma, pmd=True)


# ---------------------------------------------------------------- rmap walk


def rmap_walk(folio, rmap_one, arg=None, done=None) -> None:
    """rmap_walk_anon(): call ``rmap_one(folio, vma, address, arg)`` for every VMA that may
    map the folio, found through its anon_vma, until it returns False or ``done(folio)``."""
    anon_vma = folio.anon_vma
    if anon_vma is None:
        return
    first, last = folio.index, folio.index + folio.nr_pages - 1
    for avc in list(anon_vma.rb_root):
        vma = avc.vma
        start = vma_address(vma, first)
        if vma_address(vma, last) < vma.vm_start or start >= vma.vm_end:
            continue
        address = max(start, vma.vm_start)
        trace("rmap_walk_anon", f"{anon_vma!r} leads to {vma!r} in mm {vma.vm_mm.id}", folio)
        if not rmap_one(folio, vma, address, arg):
            break
        if done and done(folio):
            break


# ---------------------------------------------------------------- try_to_unmap


def try_to_unmap(folio, flags: int) -> None:
    """Unmap a folio from every page table that maps it (reclaim's step before freeing)."""
    trace("try_to_unmap", f"flags {ttu_flags_str(flags)}", folio)
    rmap_walk(folio, try_to_unmap_one, flags, done=lambda f: folio_mapcount(f) == 0)


def can_batch_unmap_folio_ptes(folio, pvmw) -> bool:
    """6.15.0 (354dffd29575): can the PTE at pvmw.pte and the ones after it clear this whole
    lazyfree folio in one go? Only if it maps the folio's first page and every page follows
    in order. Nothing caps the look-ahead at the VMA's end or the page table's end; the
    kernel could read past the table (fixed by ddd05742b45b), the model stops there."""
    if not (folio_test_large(folio) and folio_test_lazyfree(folio)) or pvmw.pte.page != 0:
        return False
    ptes, first = pvmw.pmd.ptes, pte_index(pvmw.address)
    run = ptes[first:first + folio.nr_pages]
    return len(run) == folio.nr_pages and all(
        pte is not None and pte.folio is folio and pte.page == i for i, pte in enumerate(run))


def folio_unmap_pte_batch(folio, pvmw, flags: int) -> int:
    """How many PTEs, starting at pvmw.pte, map consecutive pages of this lazyfree folio and
    can be cleared together: any part of it, capped at the VMA's end and the page table's
    end ("mm/rmap: fix potential out-of-bounds page table access during batched unmap",
    ddd05742b45b, 6.16 and 6.15.7).

    The batch also ends where the write bit changes: that is Dev Jain's 2026 fix
    29f40594a281 ("mm/rmap: fix incorrect pte restoration for lazyfree folios"), which the
    model applies in every profile that has this helper. Simplification: before that fix
    the kernel batched across a write-bit change and, when the discard failed, restored all
    the PTEs with the first one's write bit; the model restores each PTE as it was.
    """
    if not (folio_test_large(folio) and folio_test_lazyfree(folio)):
        return 1
    ptes = pvmw.pmd.ptes
    first = pte_index(pvmw.address)
    limit = min(len(ptes) - first, (pvmw.end - pvmw.address) // PAGE_SIZE, folio.nr_pages - pvmw.pte.page)
    nr = 1
    while nr < limit:
        pte = ptes[first + nr]
        if pte is None or pte.folio is not folio or pte.page != pvmw.pte.page + nr or pte.write != pvmw.pte.write:
            break
        nr += 1
    return nr


def try_to_unmap_one(folio, vma, address: int, flags: int) -> bool:
    """Unmap ``folio`` from one VMA; False stops the rmap walk (the folio must stay mapped).

    The heart of the course: where the PMD of a THP is split (before the walk in 6.10,
    inside it since 6.11), what happens in a VM_LOCKED VMA, and when a clean lazyfree
    folio is discarded instead of unmapped for swap. Simplifications: no swap device (a
    swap-backed anon folio is never unmapped here), no hugetlb, no device-private entries,
    TLB flushes are traced but not modelled.
    """
    mm = vma.vm_mm
    pvmw = PageVmaMappedWalk(folio, vma, address, PVMW_SYNC if flags & TTU_SYNC else 0)
    ret = True
    ptes = 0

    if kernel.split_pmd_before_walk:
        # 6.10: PTE-map the THP first, so the walk below only ever meets PTEs.
        if flags & TTU_SPLIT_HUGE_PMD:
            split_huge_pmd_address(vma, address, folio)

    while page_vma_mapped_walk(pvmw):
        if kernel.split_pmd_before_walk:
            if pvmw.pte is None:
                raise ModelBug("VM_BUG_ON_FOLIO: unexpected PMD-mapped THP")

        # A VM_LOCKED VMA keeps what it maps in memory: nothing is unmapped from one.
        if not flags & TTU_IGNORE_MLOCK and vma.vm_flags & VM_LOCKED:
            if kernel.mlock_large_in_ttu:
                # 6.18: count the folio's PTEs; mlock it only once all are seen under one lock.
                ptes += 1
                ret = False
                if pvmw.pte is not None and ptes != pvmw.nr_pages:
                    continue
                if pvmw.flags & PVMW_PGTABLE_CROSSED:
                    trace("try_to_unmap_one", "VM_LOCKED, but the PTEs span two page tables: no mlock", folio)
                    break
                mlock_vma_folio(folio, vma)
                trace("try_to_unmap_one", "VM_LOCKED: restored the mlock that was missed; stop", folio)
                break
            else:
                if kernel.v6_mlock_restore_pmd:
                    restore = not folio_test_large(folio) or (pvmw.pte is None and flags & TTU_SPLIT_HUGE_PMD)
                else:
                    restore = not folio_test_large(folio)
                if restore:
                    mlock_vma_folio(folio, vma)
                trace("try_to_unmap_one",
                      "VM_LOCKED: " + ("restored the mlock that was missed; " if restore else "")
                      + "abort the walk, the folio stays mapped", folio)
                ret = False
                break

        if not kernel.split_pmd_before_walk:
            # 6.11: the walk may now yield the PMD itself; split it here (or discard it).
            if pvmw.pte is None:
                if kernel.pmd_lazyfree_discard:
                    if kernel.pmd_lazyfree_no_split:
                        if folio_test_lazyfree(folio):
                            if unmap_huge_pmd_locked(vma, pvmw.address, pvmw.pmd, folio):
                                break
                            trace("try_to_unmap_one", "lazyfree THP kept: abort without splitting the PMD", folio)
                            ret = False
                            break
                    else:
                        if unmap_huge_pmd_locked(vma, pvmw.address, pvmw.pmd, folio):
                            break
                if flags & TTU_SPLIT_HUGE_PMD:
                    split_huge_pmd_locked(vma, pvmw.address, pvmw.pmd, folio)
                    flags &= ~TTU_SPLIT_HUGE_PMD
                    page_vma_mapped_walk_restart(pvmw)
                    trace("try_to_unmap_one", "split the PMD under the lock the walk holds; restart the walk "
                          "to see the PTEs", folio)
                    continue
            if pvmw.pte is None:
                raise ModelBug("VM_BUG_ON_FOLIO: PMD-mapped folio neither discarded nor split")

        if kernel.batched_lazyfree_unmap:
            if kernel.pte_batch_partial:
                nr_pages = folio_unmap_pte_batch(folio, pvmw, flags)
            else:
                nr_pages = folio.nr_pages if can_batch_unmap_folio_ptes(folio, pvmw) else 1
        else:
            nr_pages = 1
        table, first = pvmw.pmd.ptes, pte_index(pvmw.address)
        cleared = table[first:first + nr_pages]
        table[first:first + nr_pages] = [None] * nr_pages
        if any(p.dirty for p in cleared):
            folio_set_dirty(folio)
        page = pvmw.pte.page

        if folio_test_anon(folio):
            if not folio_test_swapbacked(folio):
                ref_count, map_count = folio_ref_count(folio), folio_mapcount(folio)
                if ref_count == 1 + map_count and not folio_test_dirty(folio):
                    mm.MM_ANONPAGES -= nr_pages
                    trace("try_to_unmap_one", "clean lazyfree folio, refcount {ref_count} = 1 + mapcount "
                          "{map_count}: discard {nr_pages} PTE(s)", folio,
                          ref_count=ref_count, map_count=map_count, nr_pages=nr_pages)
                else:
                    table[first:first + nr_pages] = cleared
                    reason = "dirty" if folio_test_dirty(folio) else f"refcount {ref_count} != 1 + mapcount {map_count}"
                    if kernel.swapbacked_only_if_dirty:
                        if folio_test_dirty(folio):
                            folio_set_swapbacked(folio)
                    else:
                        folio_set_swapbacked(folio)
                    trace("try_to_unmap_one", f"lazyfree folio {reason}: restore the PTE(s)"
                          + (", set PG_swapbacked" if folio_test_swapbacked(folio) else "") + "; abort", folio)
                    ret = False
                    break
            else:
                table[first:first + nr_pages] = cleared
                trace("try_to_unmap_one", "swap-backed anon folio but no swap space: restore the PTE; abort", folio)
                ret = False
                break

        folio_remove_rmap_ptes(folio, page, nr_pages, vma)
        folio_put_refs(folio, nr_pages)
        if nr_pages == folio.nr_pages:
            break

    page_vma_mapped_walk_done(pvmw)
    return ret


# ---------------------------------------------------------------- folio_referenced


class _ReferencedArg:
    __slots__ = ("mapcount", "referenced", "vm_flags")

    def __init__(self, mapcount: int):
        self.mapcount = mapcount
        self.referenced = 0
        self.vm_flags = 0


def folio_referenced_one(folio, vma, address: int, pra: _ReferencedArg) -> bool:
    """Test and clear the accessed bits of the folio's mappings in one VMA. A folio found in
    a VM_LOCKED VMA is mlocked here when it can be ("restore the mlock which got missed"):
    a small folio, a PMD-mapped THP, or a large folio fully PTE-mapped in one page table
    (the rule since "mm: support large folio for mlock", merged 6.7)."""
    pvmw = PageVmaMappedWalk(folio, vma, address)
    ptes = referenced = 0
    while page_vma_mapped_walk(pvmw):
        if vma.vm_flags & VM_LOCKED:
            if not folio_test_large(folio) or pvmw.pte is None:
                mlock_vma_folio(folio, vma)
                page_vma_mapped_walk_done(pvmw)
                pra.vm_flags |= VM_LOCKED
                trace("folio_referenced_one", "VM_LOCKED: restored the mlock that was missed", folio)
                return False
            ptes += 1
            pra.mapcount -= 1
            continue
        entry = pvmw.pte if pvmw.pte is not None else pvmw.pmd
        if entry.young:
            entry.young = False
            referenced += 1
        pra.mapcount -= 1
    if vma.vm_flags & VM_LOCKED and folio_test_large(folio):
        start = vma_address(vma, folio.index)
        within = vma.vm_start <= start and start + folio.nr_pages * PAGE_SIZE <= vma.vm_end
        one_table = start // HPAGE_PMD_SIZE == (start + folio.nr_pages * PAGE_SIZE - 1) // HPAGE_PMD_SIZE
        if within and one_table and ptes == folio.nr_pages:
            mlock_vma_folio(folio, vma)
            pra.vm_flags |= VM_LOCKED
            trace("folio_referenced_one", "VM_LOCKED, fully PTE-mapped in one table: mlocked", folio)
            return False
    if referenced:
        pra.referenced += 1
        pra.vm_flags |= vma.vm_flags & ~VM_LOCKED
    return pra.mapcount > 0


def folio_referenced(folio) -> tuple[int, int]:
    """How many VMAs map the folio with the accessed bit set (clearing the bits), and the
    union of their vm_flags (VM_LOCKED if one of them was locked)."""
    pra = _ReferencedArg(folio_mapcount(folio))
    if not pra.mapcount:
        return 0, 0
    rmap_walk(folio, folio_referenced_one, pra)
    return pra.referenced, pra.vm_flags

