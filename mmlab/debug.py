"""Consistency checks over a whole Machine (~ the kernel's CONFIG_DEBUG_VM checks, gathered).

``check_invariants(machine)`` recounts everything the model keeps in two places: the
mapcounts and refcounts of every folio against what the page tables of all live processes
say, the LRU lists against the page flags, the RSS counters and /proc/vmstat against the
folios, smaps against the page map. It raises ModelBug naming the first disagreement.

Call it between system calls ("at rest"): then no folio is isolated from its LRU list, so
every reference is a mapping or a pin. Tests run it after every step; a notebook or the
grader can run it after a learner's experiment to show the model stayed sound.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from .include.internal import vma_address
from .include.mm import GUP_PIN_COUNTING_BIAS, VM_LOCKED, VM_WRITE, ModelBug, folio_entire_mapcount, folio_mapcount
from .include.mm_inline import LRU_LISTS, folio_lru_list
from .include.page_flags import PG
from .include.pgtable import PmdHuge
from .mm.task_mmu import pagemap_of, smaps_of
from .uapi import HPAGE_PMD_NR, HPAGE_PMD_SIZE, PAGE_SIZE

__all__ = ["ModelBug", "check_invariants"]


@dataclass
class _Mappings:
    """What the page tables say about one folio."""

    pmds: list = field(default_factory=list)  # (vma, address) of each huge PMD mapping it
    ptes: list = field(default_factory=list)  # (vma, address, page, pte) of each PTE mapping it
    locked: bool = False  # mapped in at least one VM_LOCKED VMA

    def page_counts(self) -> Counter:
        return Counter(page for _, _, page, _ in self.ptes)


def check_invariants(machine) -> None:
    """Raise ModelBug if the model's state is inconsistent anywhere (see the module doc)."""
    mappings = _scan_page_tables(machine)
    for folio in mappings:
        if machine.folios.get(folio.pfn) is not folio:
            raise ModelBug(f"{folio!r} is mapped but was freed (use after free)")
    for folio in machine.folios.values():
        seen = mappings.get(folio, _Mappings())
        _check_mapcounts(folio, seen)
        _check_refcount(folio, seen)
        _check_rmap_reaches(folio, seen)
        _check_lru_and_mlock(machine, folio, seen)
    _check_lru_lists(machine)
    _check_deferred_split_queue(machine)
    _check_vmstat(machine)
    for process in _live(machine):
        _check_proc_views(process)


def _live(machine):
    return [p for p in machine.processes if not p.exited]


def _is_zero(folio) -> bool:
    return bool(folio.flags & PG.zero)


def _scan_page_tables(machine) -> dict:
    """Every mapping of every folio, from the page tables of every live process; checks on
    the way that each entry lies inside a VMA that allows it, and the RSS counter."""
    mappings: dict = {}
    for process in _live(machine):
        mm = process.mm
        anon_pages = 0
        huge = {index for index, entry in mm.pmds.items() if isinstance(entry, PmdHuge)}
        if huge != set(mm.deposited):
            raise ModelBug(f"mm {mm.id}: huge PMDs at {sorted(huge)} but deposited page tables at "
                           f"{sorted(mm.deposited)}: each huge PMD has exactly one")
        for index, entry in mm.pmds.items():
            haddr = index * HPAGE_PMD_SIZE
            if isinstance(entry, PmdHuge):
                vma = _vma_covering(mm, haddr, haddr + HPAGE_PMD_SIZE, "a huge PMD")
                if entry.write and not vma.vm_flags & VM_WRITE:
                    raise ModelBug(f"mm {mm.id}: writable huge PMD at {haddr:#x} in {vma!r}")
                if _is_zero(entry.folio):
                    continue
                anon_pages += entry.folio.nr_pages
                seen = mappings.setdefault(entry.folio, _Mappings())
                seen.pmds.append((vma, haddr))
                seen.locked |= bool(vma.vm_flags & VM_LOCKED)
                continue
            for slot, pte in enumerate(entry.ptes):
                if pte is None:
                    continue
                address = haddr + slot * PAGE_SIZE
                vma = _vma_covering(mm, address, address + PAGE_SIZE, "a PTE")
                if pte.write and not vma.vm_flags & VM_WRITE:
                    raise ModelBug(f"mm {mm.id}: writable PTE at {address:#x} in {vma!r}")
                if _is_zero(pte.folio):
                    if pte.write:
                        raise ModelBug(f"mm {mm.id}: the zero page is mapped writable at {address:#x}")
                    continue
                anon_pages += 1
                seen = mappings.setdefault(pte.folio, _Mappings())
                seen.ptes.append((vma, address, pte.page, pte))
                seen.locked |= bool(vma.vm_flags & VM_LOCKED)
        if mm.MM_ANONPAGES != anon_pages:
            raise ModelBug(f"mm {mm.id}: MM_ANONPAGES is {mm.MM_ANONPAGES}, its page tables map "
                           f"{anon_pages} anonymous pages")
    return mappings


def _vma_covering(mm, start: int, end: int, what: str):
    vma = mm.find_vma(start)
    if vma is None or end > vma.vm_end:
        raise ModelBug(f"mm {mm.id}: {what} maps {start:#x}-{end:#x}, which no single VMA covers")
    return vma


def _check_mapcounts(folio, seen: _Mappings) -> None:
    """_mapcount, _large_mapcount, _entire_mapcount and _nr_pages_mapped against the tables."""
    per_page = seen.page_counts()
    if folio.order == 0:
        if seen.pmds or folio._mapcount[0] + 1 != len(seen.ptes):
            raise ModelBug(f"{folio!r}: _mapcount says {folio._mapcount[0] + 1} mappings, "
                           f"the page tables have {len(seen.ptes)}")
        return
    if folio_entire_mapcount(folio) != len(seen.pmds):
        raise ModelBug(f"{folio!r}: entire mapcount {folio_entire_mapcount(folio)}, "
                       f"{len(seen.pmds)} huge PMDs map it")
    if folio_mapcount(folio) != len(seen.pmds) + len(seen.ptes):
        raise ModelBug(f"{folio!r}: mapcount {folio_mapcount(folio)}, but {len(seen.pmds)} PMDs and "
                       f"{len(seen.ptes)} PTEs map it")
    for page, count in enumerate(folio._mapcount):
        if count + 1 != per_page[page]:
            raise ModelBug(f"{folio!r}: page {page} has _mapcount {count} (+1), "
                           f"{per_page[page]} PTEs map it")
    if folio._nr_pages_mapped != len(per_page):
        raise ModelBug(f"{folio!r}: _nr_pages_mapped {folio._nr_pages_mapped}, "
                       f"{len(per_page)} pages are mapped by PTEs")


def _check_refcount(folio, seen: _Mappings) -> None:
    """At rest every reference is a mapping or a GUP pin; a folio with neither is leaked."""
    mapped = len(seen.pmds) + len(seen.ptes)
    extra = folio._refcount - mapped
    if folio.order:
        if extra != folio._pincount:
            raise ModelBug(f"{folio!r}: refcount {folio._refcount} != {mapped} mappings + "
                           f"{folio._pincount} pins (is a reference leaked, or an isolation not undone?)")
        pinned = folio._pincount
    else:
        # A pin of a small folio adds GUP_PIN_COUNTING_BIAS; the count alone is what the kernel
        # has too (folio_maybe_dma_pinned()).
        if extra < 0 or extra % GUP_PIN_COUNTING_BIAS:
            raise ModelBug(f"{folio!r}: refcount {folio._refcount} is not {mapped} mappings plus whole "
                           f"pins of {GUP_PIN_COUNTING_BIAS}")
        pinned = extra
    if folio._refcount <= 0:
        raise ModelBug(f"{folio!r}: allocated with refcount {folio._refcount}")
    if not mapped and not pinned:
        raise ModelBug(f"{folio!r}: neither mapped nor pinned, yet not freed (leak)")


def _check_rmap_reaches(folio, seen: _Mappings) -> None:
    """Reclaim finds mappings only through folio->anon_vma: every mapping must be reachable
    there, at the address vma_address() computes from folio->index, and a page mapped
    writable or by two page tables must say so through PageAnonExclusive."""
    chained = {id(avc.vma) for avc in folio.anon_vma.rb_root} if folio.anon_vma else set()
    for vma, address in seen.pmds:
        _check_reachable(folio, vma, address, 0, chained)
    for vma, address, page, _ in seen.ptes:
        _check_reachable(folio, vma, address, page, chained)
    if not folio.flags & PG.anon and (seen.pmds or seen.ptes):
        raise ModelBug(f"{folio!r}: mapped anonymous memory without PG_anon")
    for vma, address in seen.pmds:
        if vma.vm_mm.pmds[address // HPAGE_PMD_SIZE].write and not folio.anon_exclusive[0]:
            raise ModelBug(f"{folio!r}: writable huge PMD at {address:#x} but the folio is not anon-exclusive")
    for _vma, address, page, pte in seen.ptes:
        if pte.write and not folio.anon_exclusive[page]:
            raise ModelBug(f"{folio!r}: writable PTE at {address:#x} maps page {page}, which is not "
                           "anon-exclusive (a COW break was missed)")
    per_page = seen.page_counts()
    for page, exclusive in enumerate(folio.anon_exclusive):
        if exclusive and per_page[page] + len(seen.pmds) > 1:
            raise ModelBug(f"{folio!r}: page {page} is anon-exclusive but mapped "
                           f"{per_page[page] + len(seen.pmds)} times")


def _check_reachable(folio, vma, address: int, page: int, chained: set) -> None:
    if id(vma) not in chained:
        raise ModelBug(f"{folio!r} is mapped in {vma!r} of mm {vma.vm_mm.id}, which its anon_vma does "
                       "not reach: rmap_walk would miss this mapping")
    expected = vma_address(vma, folio.index + page)
    if expected != address:
        raise ModelBug(f"{folio!r}: page {page} mapped at {address:#x}, but its index puts it at {expected:#x}")


def _check_lru_and_mlock(machine, folio, seen: _Mappings) -> None:
    """At rest every folio is on the LRU list its flags name; PG_mlocked folios are the
    unevictable ones and are mapped in some VM_LOCKED VMA."""
    if not folio.flags & PG.lru or folio.lru is None:
        raise ModelBug(f"{folio!r}: not on an LRU list at rest (PG_lru {bool(folio.flags & PG.lru)}, "
                       f"list {folio.lru})")
    if folio.lru != folio_lru_list(folio):
        raise ModelBug(f"{folio!r}: on {folio.lru}, but its flags say {folio_lru_list(folio)}")
    if folio not in machine.lru[folio.lru]:
        raise ModelBug(f"{folio!r}: says it is on {folio.lru}, the list does not have it")
    mlocked, unevictable = bool(folio.flags & PG.mlocked), bool(folio.flags & PG.unevictable)
    if mlocked != unevictable:
        raise ModelBug(f"{folio!r}: PG_mlocked {mlocked} but PG_unevictable {unevictable} at rest")
    if mlocked and not seen.locked:
        raise ModelBug(f"{folio!r}: PG_mlocked but no VM_LOCKED VMA maps it (the mlock outlived the lock)")
    if folio.flags & PG.anon and not folio.flags & PG.swapbacked and folio.lru.endswith("_anon"):
        raise ModelBug(f"{folio!r}: lazyfree folio on an anon LRU list")


def _check_lru_lists(machine) -> None:
    for name in LRU_LISTS:
        for folio in machine.lru[name]:
            if machine.folios.get(folio.pfn) is not folio:
                raise ModelBug(f"{folio!r} is on {name} but was freed")
            if folio.lru != name:
                raise ModelBug(f"{folio!r} is on {name} but says {folio.lru}")


def _check_deferred_split_queue(machine) -> None:
    for folio in machine.deferred_split_queue:
        if not folio.deferred_split or machine.folios.get(folio.pfn) is not folio or not folio.order:
            raise ModelBug(f"{folio!r} is on the deferred split queue but should not be")
    for folio in machine.folios.values():
        if folio.deferred_split and folio not in machine.deferred_split_queue:
            raise ModelBug(f"{folio!r} says it is queued for a deferred split but is not")


def _check_vmstat(machine) -> None:
    """nr_anon_pages counts pages mapped at least once (NR_ANON_MAPPED), nr_anon_transparent_
    hugepages the PMD-mapped THPs, nr_mlock the pages of PG_mlocked folios."""
    anon = thp = mlock = 0
    for folio in machine.folios.values():
        if folio.flags & PG.mlocked:
            mlock += folio.nr_pages
        if not folio.flags & PG.anon:
            continue
        if folio.order == 0:
            anon += folio._mapcount[0] >= 0
        elif folio_entire_mapcount(folio):
            anon += folio.nr_pages
            thp += folio.nr_pages // HPAGE_PMD_NR
        else:
            anon += folio._nr_pages_mapped
    for name, counted in (("nr_anon_pages", anon), ("nr_anon_transparent_hugepages", thp), ("nr_mlock", mlock)):
        if machine.vmstat[name] != counted:
            raise ModelBug(f"/proc/vmstat {name} is {machine.vmstat[name]}, the folios say {counted}")


def _check_proc_views(process) -> None:
    """smaps Rss and AnonHugePages against the page map of every VMA."""

    for block in smaps_of(process.mm).vmas:
        pages = pagemap_of(process.mm, block.start, block.end - block.start)
        rss = sum(4 for p in pages if p.present and not p.zero_page)
        huge = sum(4 for p in pages if p.present and p.pmd_mapped and not p.zero_page)
        if block.fields["Rss"] != rss or block.fields["AnonHugePages"] != huge:
            raise ModelBug(f"process {process.pid} {block.start:#x}-{block.end:#x}: smaps Rss "
                           f"{block.fields['Rss']} kB, AnonHugePages {block.fields['AnonHugePages']} kB; "
                           f"its page map says {rss} kB and {huge} kB")
