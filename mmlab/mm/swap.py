"""Folio references and the LRU moves of mm/swap.c: the last folio_put() frees a folio
(__folio_put), a new folio joins the LRU (folio_add_lru, folio_add_lru_vma), MADV_FREE
makes one lazyfree, MADV_COLD deactivates, an access marks one accessed.

folio_put() and folio_put_refs() are inlines of include/linux/mm.h that end in
__folio_put(); the model keeps them here with it, so that include/ never calls into mm/.
Simplification: the kernel gathers small folios in per-CPU batches before they reach a
list; the model moves every folio at once (the kernel does that for large folios).
"""

from __future__ import annotations

from ..include.internal import folio_evictable, folio_unqueue_deferred_split, mlock_new_folio
from ..include.mm import VM_LOCKED, ModelBug, is_zero_folio
from ..include.mm_inline import lruvec_add_folio, lruvec_del_folio
from ..include.page_flags import (
    folio_clear_active,
    folio_clear_flags_at_free,
    folio_clear_mlocked,
    folio_clear_referenced,
    folio_clear_swapbacked,
    folio_clear_unevictable,
    folio_set_active,
    folio_set_referenced,
    folio_set_unevictable,
    folio_test_active,
    folio_test_anon,
    folio_test_lru,
    folio_test_mlocked,
    folio_test_referenced,
    folio_test_swapbacked,
    folio_test_unevictable,
)
from ..state import count_vm_events, current, trace


def __folio_put(folio) -> None:
    """The last reference is gone: take the folio off its lists and free it."""
    if is_zero_folio(folio):
        raise ModelBug("the zero page is never freed")
    folio_unqueue_deferred_split(folio)
    if folio_test_lru(folio):
        lruvec_del_folio(folio)
    if folio_test_mlocked(folio):
        folio_clear_mlocked(folio)
        current.machine.vmstat["nr_mlock"] -= folio.nr_pages
        count_vm_events("unevictable_pgs_cleared", folio.nr_pages)
    if current.machine.folios.pop(folio.pfn, None) is not folio:
        raise ModelBug(f"{folio!r} freed twice")
    folio_clear_flags_at_free(folio)
    trace("free_folio", f"freed the folio at pfn {folio.pfn:#x} ({folio.nr_pages} pages)")


def folio_put_refs(folio, refs: int) -> None:
    folio._refcount -= refs
    if folio._refcount < 0:
        raise ModelBug(f"refcount of {folio!r} went below zero")
    if folio._refcount == 0:
        __folio_put(folio)


def folio_put(folio) -> None:
    folio_put_refs(folio, 1)


def folio_add_lru(folio) -> None:
    """Put a folio that is off the LRU onto the right list (lru_add): an mlocked one is
    culled to the unevictable list, one that lost its mlock is rescued from it."""
    was_unevictable = folio_test_unevictable(folio)
    folio_clear_unevictable(folio)
    if folio_evictable(folio):
        if was_unevictable:
            count_vm_events("unevictable_pgs_rescued", folio.nr_pages)
    else:
        folio_clear_active(folio)
        folio_set_unevictable(folio)
        folio.mlock_count = 0
        if not was_unevictable:
            count_vm_events("unevictable_pgs_culled", folio.nr_pages)
    lruvec_add_folio(folio)


def folio_add_lru_vma(folio, vma) -> None:
    """A new folio joins the LRU, or the unevictable list if its VMA is locked."""
    if vma.vm_flags & VM_LOCKED:
        mlock_new_folio(folio)
    else:
        folio_add_lru(folio)


def folio_mark_lazyfree(folio) -> None:
    """MADV_FREE's last step: move a swap-backed anon folio to the inactive file list and
    clear PG_swapbacked, so reclaim may drop it without writing it anywhere."""
    if not (folio_test_anon(folio) and folio_test_swapbacked(folio) and folio_test_lru(folio)
            and not folio_test_unevictable(folio)):
        trace("folio_mark_lazyfree", "not an evictable swap-backed anon folio on the LRU: left alone", folio)
        return
    lruvec_del_folio(folio)
    folio_clear_active(folio)
    folio_clear_referenced(folio)
    folio_clear_swapbacked(folio)
    lruvec_add_folio(folio)
    count_vm_events("pglazyfree", folio.nr_pages)
    trace("folio_mark_lazyfree", "cleared PG_swapbacked and moved the folio to the inactive file list", folio)


def folio_deactivate(folio) -> None:
    """MADV_COLD: move a folio to its inactive list (lru_deactivate)."""
    if not folio_test_lru(folio) or folio_test_unevictable(folio) or not folio_test_active(folio):
        return
    lruvec_del_folio(folio)
    folio_clear_active(folio)
    folio_clear_referenced(folio)
    lruvec_add_folio(folio)
    count_vm_events("pgdeactivate", folio.nr_pages)


def folio_mark_accessed(folio) -> None:
    """A software access (e.g. mlock's populate touching a present page): the first marks
    the folio referenced, the second activates it."""
    if not folio_test_referenced(folio):
        folio_set_referenced(folio)
    elif not folio_test_unevictable(folio) and not folio_test_active(folio):
        if folio_test_lru(folio):
            lruvec_del_folio(folio)
            folio_set_active(folio)
            lruvec_add_folio(folio)
            count_vm_events("pgactivate", folio.nr_pages)
        folio_clear_referenced(folio)
