"""The LRU lists and the moves on and off them (include/linux/mm_inline.h).

One node, no memory cgroups, classic (non-MGLRU) LRU, as on this project's machines.
"""

from __future__ import annotations

from ..state import current
from .page_flags import folio_clear_lru, folio_set_lru, folio_test_active, folio_test_swapbacked, folio_test_unevictable

LRU_LISTS = ("inactive_anon", "active_anon", "inactive_file", "active_file", "unevictable")


def folio_lru_list(folio) -> str:
    """Which list a folio belongs on, from its flags."""
    if folio_test_unevictable(folio):
        return "unevictable"
    kind = "anon" if folio_test_swapbacked(folio) else "file"
    return f"{'active' if folio_test_active(folio) else 'inactive'}_{kind}"


def lruvec_add_folio(folio) -> None:
    name = folio_lru_list(folio)
    current.machine.lru[name][folio] = None
    folio.lru = name
    folio_set_lru(folio)


def lruvec_del_folio(folio) -> None:
    del current.machine.lru[folio.lru][folio]
    folio.lru = None
    folio_clear_lru(folio)
