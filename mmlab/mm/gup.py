"""GUP pins (~ mm/gup.c): pin_user_pages() holds pages for DMA with extra references.

A pin of a small folio adds GUP_PIN_COUNTING_BIAS (1024) to its refcount; a pin of a large
folio adds 1 to the refcount and 1 to ``_pincount``, per page pinned. Either way the folio
now has more references than mappings, which is what reclaim's lazyfree checks look for.
"""

from __future__ import annotations

from ..include.mm_types import GUP_PIN_COUNTING_BIAS
from ..include.pgtable import PmdHuge, pmd_index, pte_index
from ..state import trace
from ..uapi import HPAGE_PMD_SIZE, PAGE_SIZE
from .memory import handle_mm_fault
from .page_alloc import folio_put_refs


def _grab(folio, refs: int) -> None:
    if folio.order:
        folio._refcount += refs
        folio._pincount += refs
    else:
        folio._refcount += refs * GUP_PIN_COUNTING_BIAS


def unpin_folio(folio, refs: int) -> None:
    if folio.order:
        folio._pincount -= refs
        folio_put_refs(folio, refs)
    else:
        folio_put_refs(folio, refs * GUP_PIN_COUNTING_BIAS)


def pin_user_pages(mm, start: int, end: int) -> list:
    """FOLL_PIN | FOLL_WRITE: fault each page in writable (breaking COW), then pin it.
    Returns the (folio, refs) pairs to hand back to unpin_folio()."""
    pinned = []
    addr = start
    while addr < end:
        vma = mm.find_vma(addr)
        entry = mm.pmds.get(pmd_index(addr))
        if isinstance(entry, PmdHuge) and entry.write:
            pte_folio, nr = entry.folio, (min(end, (addr | (HPAGE_PMD_SIZE - 1)) + 1) - addr) // PAGE_SIZE
        else:
            pte = entry.ptes[pte_index(addr)] if entry is not None and not isinstance(entry, PmdHuge) else None
            if pte is None or not pte.write:
                handle_mm_fault(vma, addr, write=True)
                continue
            pte_folio, nr = pte.folio, 1
        _grab(pte_folio, nr)
        pinned.append((pte_folio, nr))
        trace("pin_user_pages", f"pinned {nr} page(s) at {addr:#x}", pte_folio)
        addr += nr * PAGE_SIZE
    return pinned
