"""Allocating and freeing folios, and their reference count (~ mm/page_alloc.c, mm/swap.c).

Physical memory is a bump allocator of page frame numbers: PFNs are never reused, so a
stale reference to a freed folio can never be mistaken for a live one. The Machine keeps
every allocated folio by PFN; freeing one twice is a model bug and raises.
"""

from __future__ import annotations

from ..include.mm_types import Folio
from ..include.page_flags import PG, folio_test_lru, folio_test_mlocked
from ..state import count_vm_events, current, trace


class ModelBug(AssertionError):
    """An invariant the kernel relies on was broken inside the model."""


def folio_alloc(order: int, flags: int) -> Folio:
    machine = current.machine
    align = 1 << order
    pfn = -(-machine.next_pfn // align) * align
    machine.next_pfn = pfn + align
    folio = Folio(pfn=pfn, order=order, flags=flags)
    machine.folios[pfn] = folio
    return folio


def folio_get(folio: Folio) -> None:
    folio._refcount += 1


def folio_put_refs(folio: Folio, refs: int) -> None:
    folio._refcount -= refs
    if folio._refcount < 0:
        raise ModelBug(f"refcount of {folio!r} went below zero")
    if folio._refcount == 0:
        __folio_put(folio)


def folio_put(folio: Folio) -> None:
    folio_put_refs(folio, 1)


def __folio_put(folio: Folio) -> None:
    """The last reference is gone: take the folio off its lists and free it."""
    from .huge_memory import folio_unqueue_deferred_split
    from .swap import lruvec_del_folio

    if folio.flags & PG.zero:
        raise ModelBug("the zero page is never freed")
    if folio_test_lru(folio):
        lruvec_del_folio(folio)
    if folio_test_mlocked(folio):
        folio.flags &= ~PG.mlocked
        current.machine.vmstat["nr_mlock"] -= folio.nr_pages
        count_vm_events("unevictable_pgs_cleared", folio.nr_pages)
    folio_unqueue_deferred_split(folio)
    if current.machine.folios.pop(folio.pfn, None) is not folio:
        raise ModelBug(f"{folio!r} freed twice")
    folio.flags = 0
    trace("free_folio", f"freed the folio at pfn {folio.pfn:#x} ({folio.nr_pages} pages)")
