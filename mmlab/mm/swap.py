"""The LRU lists and the folio moves between them (~ mm/swap.c, include/linux/mm_inline.h).

One node, no memory cgroups, classic (non-MGLRU) LRU, as on this project's machines.
Simplification: the kernel gathers small folios in per-CPU batches before they reach a
list; the model moves every folio at once (the kernel does that for large folios).
"""

from __future__ import annotations

from ..include.page_flags import (
    PG,
    folio_clear_active,
    folio_clear_referenced,
    folio_clear_swapbacked,
    folio_set_unevictable,
    folio_test_active,
    folio_test_anon,
    folio_test_lru,
    folio_test_mlocked,
    folio_test_swapbacked,
    folio_test_unevictable,
)
from ..state import count_vm_events, current, trace

LRU_LISTS = ("inactive_anon", "active_anon", "inactive_file", "active_file", "unevictable")


def folio_evictable(folio) -> bool:
    return not folio_test_mlocked(folio)


def folio_lru_list(folio) -> str:
    """Which list a folio belongs on, from its flags (folio_lru_list in mm_inline.h)."""
    if folio_test_unevictable(folio):
        return "unevictable"
    kind = "anon" if folio_test_swapbacked(folio) else "file"
    return f"{'active' if folio_test_active(folio) else 'inactive'}_{kind}"


def lruvec_add_folio(folio) -> None:
    name = folio_lru_list(folio)
    current.machine.lru[name][folio] = None
    folio.lru = name
    folio.flags |= PG.lru


def lruvec_del_folio(folio) -> None:
    del current.machine.lru[folio.lru][folio]
    folio.lru = None
    folio.flags &= ~PG.lru


def lru_add(folio) -> None:
    """Put a folio that is off the LRU onto the right list; an mlocked one is culled to the
    unevictable list, one that lost its mlock is rescued from it."""
    was_unevictable = folio_test_unevictable(folio)
    folio.flags &= ~PG.unevictable
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


folio_add_lru = lru_add


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
    if not folio.flags & PG.referenced:
        folio.flags |= PG.referenced
    elif not folio_test_unevictable(folio) and not folio_test_active(folio):
        if folio_test_lru(folio):
            lruvec_del_folio(folio)
            folio.flags |= PG.active
            lruvec_add_folio(folio)
            count_vm_events("pgactivate", folio.nr_pages)
        folio.flags &= ~PG.referenced
