"""Reverse-mapping bookkeeping (~ include/linux/rmap.h and the bookkeeping half of
mm/rmap.c): anon_vma chains, the map counts a mapping adds or removes, and the rmap walk
over the VMAs that may map a folio. mm/rmap.c's users of the walk (try_to_unmap,
folio_referenced) are in mmlab.mm.rmap; this half sits below mm/ because every part of it
(faults, THP splits, fork, zap) maps and unmaps folios.

The mapcount rules are 6.12's (and unchanged in what the course shows through 6.18): a PMD
mapping counts once in ``_entire_mapcount`` and once in ``_large_mapcount``; a PTE mapping
counts in the page's ``_mapcount`` and in ``_large_mapcount``. ``_nr_pages_mapped`` counts
pages mapped by at least one PTE (the kernel adds a bias to it while a PMD maps the folio;
the model keeps the two apart).
"""

from __future__ import annotations

from ..state import current, trace
from ..uapi import HPAGE_PMD_NR, PAGE_SIZE
from .huge_mm import deferred_split_folio
from .internal import mlock_vma_folio, munlock_vma_folio, vma_address
from .mm_types import AnonVma, AnonVmaChain
from .page_flags import (
    folio_set_anon,
    folio_set_swapbacked,
    folio_test_anon,
    folio_test_large,
    folio_test_partially_mapped,
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
    folio_set_swapbacked(folio)
    folio_set_anon(folio)
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
        deferred_split_folio(folio, partially_mapped=True)
    __folio_mod_stat(folio, -nr, -nr_pmdmapped)
    munlock_vma_folio(folio, vma)


def folio_remove_rmap_ptes(folio, page: int, nr_pages: int, vma) -> None:
    __folio_remove_rmap(folio, page, nr_pages, vma, pmd=False)


def folio_remove_rmap_pmd(folio, vma) -> None:
    __folio_remove_rmap(folio, 0, folio.nr_pages, vma, pmd=True)


# ---------------------------------------------------------------- rmap walk


def anon_vma_vmas(folio):
    """The (vma, address) pairs an rmap walk visits for ``folio``, without tracing: every
    VMA linked to its anon_vma whose range covers some page of it, in the anon_vma's
    order, with the address of the folio's first page there (clipped to the VMA)."""
    anon_vma = folio.anon_vma
    if anon_vma is None:
        return
    first, last = folio.index, folio.index + folio.nr_pages - 1
    for avc in list(anon_vma.rb_root):
        vma = avc.vma
        start = vma_address(vma, first)
        if vma_address(vma, last) < vma.vm_start or start >= vma.vm_end:
            continue
        yield vma, max(start, vma.vm_start)


def rmap_walk(folio, rmap_one, arg=None, done=None) -> None:
    """rmap_walk_anon(): call ``rmap_one(folio, vma, address, arg)`` for every VMA that may
    map the folio, found through its anon_vma, until it returns False or ``done(folio)``."""
    for vma, address in anon_vma_vmas(folio):
        trace("rmap_walk_anon", "{anon_vma} leads to {vma} in mm {mm}", folio,
              repr(folio.anon_vma), repr(vma), vma.vm_mm.id)  # as they are now: a VMA may change later
        if not rmap_one(folio, vma, address, arg):
            break
        if done and done(folio):
            break
