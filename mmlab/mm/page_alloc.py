"""Allocating folios (~ mm/page_alloc.c); freeing the last reference is __folio_put() in
mmlab.mm.swap.

Physical memory is a bump allocator of page frame numbers: PFNs are never reused, so a
stale reference to a freed folio can never be mistaken for a live one. The Machine keeps
every allocated folio by PFN; freeing one twice is a model bug and raises.
"""

from __future__ import annotations

from ..include.mm_types import Folio
from ..state import current


def folio_alloc(order: int, flags: int) -> Folio:
    machine = current.machine
    align = 1 << order
    pfn = -(-machine.next_pfn // align) * align
    machine.next_pfn = pfn + align
    folio = Folio(pfn=pfn, order=order, flags=flags)
    machine.folios[pfn] = folio
    return folio
