"""Reclaim (~ mm/vmscan.c): isolating folios from the LRU, shrink_folio_list(), and
reclaim_pages(), the path MADV_PAGEOUT takes.

Simplifications: no swap device (as on this project's machines), so a swap-backed anon
folio is never written out: a THP is split trying (thp_swpout_fallback) and the pages are
activated; no writeback, no demotion, no memory cgroups.
"""

from __future__ import annotations

from ..include.internal import folio_evictable
from ..include.mm import VM_LOCKED, folio_get, folio_mapped, folio_maybe_dma_pinned, folio_ref_count
from ..include.mm_inline import lruvec_del_folio
from ..include.page_flags import (
    folio_clear_active,
    folio_clear_referenced,
    folio_set_active,
    folio_set_referenced,
    folio_set_workingset,
    folio_test_anon,
    folio_test_large,
    folio_test_lru,
    folio_test_mlocked,
    folio_test_pmd_mappable,
    folio_test_referenced,
    folio_test_swapbacked,
)
from ..include.rmap import TTU_BATCH_FLUSH, TTU_SPLIT_HUGE_PMD, TTU_SYNC
from ..state import count_vm_event, count_vm_events, current, trace
from ..uapi import HPAGE_PMD_NR
from .huge_memory import split_folio
from .rmap import folio_referenced, try_to_unmap
from .swap import __folio_put, folio_add_lru, folio_put


def folio_isolate_lru(folio) -> bool:
    """Take a folio off its LRU list for reclaim, holding a reference (the "+1" that the
    lazyfree checks expect: refcount == mapcount + 1)."""
    if not folio_test_lru(folio):
        return False
    folio_get(folio)
    lruvec_del_folio(folio)
    return True


def folio_putback_lru(folio) -> None:
    folio_add_lru(folio)
    folio_put(folio)


def folio_check_references(folio) -> str:
    """Should LRU reclaim free this folio, keep it, or activate it?"""
    referenced_ptes, vm_flags = folio_referenced(folio)
    referenced_folio = folio_test_referenced(folio)
    folio_clear_referenced(folio)
    if vm_flags & VM_LOCKED:
        return "activate"
    if referenced_ptes:
        folio_set_referenced(folio)
        if referenced_folio or referenced_ptes > 1:
            return "activate"
        return "keep"
    return "reclaim"


def add_to_swap(folio) -> bool:
    """There is no swap device: allocating swap space always fails."""
    return False


def shrink_folio_list(folio_list: list, ignore_references: bool) -> int:
    """Try to free each isolated folio in ``folio_list``; return how many pages were freed.
    Folios that stay are left in ``folio_list`` (activated or kept) for the caller to put back."""
    kept = []
    reclaimed = 0
    while folio_list:
        folio = folio_list.pop(0)
        nr_pages = folio.nr_pages
        outcome = _shrink_one(folio, folio_list, ignore_references)
        if outcome == "freed":
            reclaimed += nr_pages
            continue
        if outcome == "activate" and not folio_test_mlocked(folio):
            folio_set_active(folio)
            count_vm_events("pgactivate", folio.nr_pages)
        kept.append(folio)
    folio_list.extend(kept)
    return reclaimed


def _shrink_one(folio, folio_list: list, ignore_references: bool) -> str:
    """One folio's pass through shrink_folio_list: "freed", "activate" or "keep"."""
    nr_pages = folio.nr_pages
    if not folio_evictable(folio):
        trace("shrink_folio_list", "mlocked: not evictable", folio)
        return "activate"
    if not ignore_references:
        references = folio_check_references(folio)
        if references != "reclaim":
            trace("shrink_folio_list", f"folio_check_references says {references}", folio)
            return references
    if folio_test_anon(folio) and folio_test_swapbacked(folio):
        if folio_maybe_dma_pinned(folio):
            return "keep"
        if not add_to_swap(folio):
            if not folio_test_large(folio):
                trace("shrink_folio_list", "swap-backed anon folio and no swap space: activate", folio)
                return "activate"
            if not split_folio(folio, folio_list):
                return "activate"
            if nr_pages >= HPAGE_PMD_NR:
                count_vm_event("thp_swpout_fallback")
            trace("shrink_folio_list", "no swap space for the THP: split it, try its pages one by one", folio)
            return "activate"
    if folio_mapped(folio):
        flags = TTU_BATCH_FLUSH
        if folio_test_pmd_mappable(folio):
            flags |= TTU_SPLIT_HUGE_PMD
        if folio_test_large(folio):
            flags |= TTU_SYNC
        was_swapbacked = folio_test_swapbacked(folio)
        try_to_unmap(folio, flags)
        if folio_mapped(folio):
            why = ("lazyfree folio made swap-backed again: redirtied, or (before 6.15) an extra reference"
                   if not was_swapbacked and folio_test_swapbacked(folio) else "still mapped")
            trace("shrink_folio_list", f"try_to_unmap failed ({why}): activate", folio)
            return "activate"
    if folio_maybe_dma_pinned(folio):
        return "activate"
    if folio_test_anon(folio) and not folio_test_swapbacked(folio):
        if folio_ref_count(folio) != 1:  # folio_ref_freeze(folio, 1)
            trace("shrink_folio_list", f"refcount {folio_ref_count(folio)} after unmap: keep", folio)
            return "keep"
        count_vm_events("pglazyfreed", folio.nr_pages)
        folio._refcount = 0
        __folio_put(folio)
        return "freed"
    trace("shrink_folio_list", "nothing frees this folio here: keep", folio)
    return "keep"


def reclaim_pages(folio_list: list) -> int:
    """MADV_PAGEOUT: reclaim these isolated folios now, ignoring their accessed bits; put
    back whatever stays."""
    reclaimed = shrink_folio_list(folio_list, ignore_references=True)
    for folio in folio_list:
        folio_putback_lru(folio)
    folio_list.clear()
    return reclaimed


def shrink_active_list() -> None:
    """Age the active file list: every folio goes back to the inactive list (an accessed
    bit only keeps executable file pages active, and the model has none). folio_referenced
    runs on each, so a folio in a VM_LOCKED VMA that missed its mlock gets it here and is
    culled to the unevictable list on its way back."""
    machine = current.machine
    for folio in list(machine.lru["active_file"]):
        if not folio_isolate_lru(folio):
            continue
        if folio_evictable(folio):
            folio_referenced(folio)
        if folio_evictable(folio):
            folio_clear_active(folio)
            folio_set_workingset(folio)
            count_vm_events("pgdeactivate", folio.nr_pages)
        folio_putback_lru(folio)


def shrink_lruvec() -> int:
    """One pass of LRU reclaim, as memory pressure would run it: age the active list, then
    shrink the inactive one, with the accessed bits consulted through folio_referenced.
    With no swap, get_scan_count() scans only the file lists, which is where lazyfree anon
    folios live; swap-backed anon is not looked at at all. Returns the pages freed."""
    machine = current.machine
    shrink_active_list()
    isolated = [folio for folio in list(machine.lru["inactive_file"]) if folio_isolate_lru(folio)]
    reclaimed = shrink_folio_list(isolated, ignore_references=False)
    for folio in isolated:
        folio_putback_lru(folio)
    return reclaimed
