"""mm/internal.h: helpers mm/ shares but the rest of the kernel does not see. The one
folio_pte_batch(), the evictable test, where a page offset sits in a VMA, and the mlock
hooks the mapping code calls (mlock_vma_folio, munlock_vma_folio).

mlock_folio(), munlock_folio() and mlock_new_folio() are defined in mm/mlock.c; the model
keeps them here with the two hooks that call them, because the mapcount bookkeeping
(mmlab.include.rmap), the THP split and reclaim all mlock folios, while mm/mlock.c's
system calls sit above gup and mmap. ``mlock_count`` counts the VMAs that mlocked a folio,
and may undercount; reclaim fixes that ("restore the mlock which got missed").
"""

from __future__ import annotations

from ..state import count_vm_events, current, trace
from ..uapi import PAGE_SHIFT
from .mm import VM_LOCKED
from .mm_inline import lruvec_add_folio, lruvec_del_folio
from .page_flags import (
    folio_clear_active,
    folio_clear_mlocked,
    folio_clear_unevictable,
    folio_set_mlocked,
    folio_set_unevictable,
    folio_test_lru,
    folio_test_mlocked,
    folio_test_unevictable,
)


def vma_address(vma, pgoff: int) -> int:
    """The address at which page offset ``pgoff`` would sit in ``vma`` (may be outside it)."""
    return vma.vm_start + ((pgoff - vma.vm_pgoff) << PAGE_SHIFT)


def folio_pte_batch(ptes: list, first: int, max_nr: int, respect_write: bool = False) -> int:
    """How many PTEs from ``ptes[first]`` on (at most ``max_nr``) map consecutive pages of
    the folio that ``ptes[first]`` maps; with ``respect_write``, also with the same write
    bit (FPB_RESPECT_WRITE). Dirty and accessed bits may differ, as the kernel ignores them
    by default."""
    start = ptes[first]
    folio, page, write = start.folio, start.page, start.write
    nr = 1
    while nr < max_nr:
        pte = ptes[first + nr]
        if pte is None or pte.folio is not folio or pte.page != page + nr or (respect_write and pte.write != write):
            break
        nr += 1
    return nr


def folio_evictable(folio) -> bool:
    return not folio_test_mlocked(folio)


def folio_unqueue_deferred_split(folio) -> None:
    """Take a folio off the deferred split queue (on its way to being freed or split)."""
    if folio.deferred_split:
        folio.deferred_split = False
        del current.machine.deferred_split_queue[folio]


def _set_mlocked(folio) -> None:
    if not folio_test_mlocked(folio):
        folio_set_mlocked(folio)
        current.machine.vmstat["nr_mlock"] += folio.nr_pages
        count_vm_events("unevictable_pgs_mlocked", folio.nr_pages)


def mlock_folio(folio) -> None:
    """Mark a mapped folio mlocked and move it to the unevictable list (or bump its count)."""
    _set_mlocked(folio)
    if not folio_test_lru(folio):
        trace("mlock_folio", "PG_mlocked set; the folio is off the LRU, so reclaim will cull it later", folio)
        return
    if folio_test_unevictable(folio):
        folio.mlock_count += 1
        trace("mlock_folio", f"already unevictable: mlock_count now {folio.mlock_count}", folio)
        return
    lruvec_del_folio(folio)
    folio_clear_active(folio)
    folio_set_unevictable(folio)
    folio.mlock_count = 1
    lruvec_add_folio(folio)
    count_vm_events("unevictable_pgs_culled", folio.nr_pages)
    trace("mlock_folio", "PG_mlocked set; moved to the unevictable LRU, mlock_count 1", folio)


def mlock_new_folio(folio) -> None:
    """A folio faulted into a VM_LOCKED VMA goes straight to the unevictable list."""
    _set_mlocked(folio)
    folio_set_unevictable(folio)
    folio.mlock_count = 1
    count_vm_events("unevictable_pgs_culled", folio.nr_pages)
    lruvec_add_folio(folio)
    trace("mlock_new_folio", "new folio in a VM_LOCKED VMA: mlocked, on the unevictable LRU", folio)


def munlock_folio(folio) -> None:
    """Drop one mlock; at mlock_count 0 clear PG_mlocked and move the folio back."""
    on_lru = folio_test_lru(folio)
    if on_lru and folio_test_unevictable(folio):
        if folio.mlock_count:
            folio.mlock_count -= 1
        if folio.mlock_count:
            trace("munlock_folio", f"mlock_count now {folio.mlock_count}: still mlocked", folio)
            return
    if not folio_test_mlocked(folio) and not (on_lru and folio_test_unevictable(folio)):
        trace("munlock_folio", "the folio was not mlocked: nothing to undo", folio)
        return
    if folio_test_mlocked(folio):
        folio_clear_mlocked(folio)
        current.machine.vmstat["nr_mlock"] -= folio.nr_pages
        stranded = not on_lru and folio_test_unevictable(folio)
        count_vm_events("unevictable_pgs_stranded" if stranded else "unevictable_pgs_munlocked", folio.nr_pages)
    if on_lru and folio_test_unevictable(folio):
        lruvec_del_folio(folio)
        folio_clear_unevictable(folio)
        lruvec_add_folio(folio)
        count_vm_events("unevictable_pgs_rescued", folio.nr_pages)
    trace("munlock_folio", "last mlock gone: PG_mlocked cleared" + (", back on an evictable list" if on_lru else ""),
          folio)


def mlock_vma_folio(folio, vma) -> None:
    """A folio mapped in a VM_LOCKED VMA is mlocked."""
    if vma.vm_flags & VM_LOCKED:
        mlock_folio(folio)


def munlock_vma_folio(folio, vma) -> None:
    """Called whenever a mapping is removed from a VM_LOCKED VMA: always munlock; if the
    folio is still mapped locked elsewhere, reclaim will find out and mlock it again."""
    if vma.vm_flags & VM_LOCKED:
        munlock_folio(folio)
