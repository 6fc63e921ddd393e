"""Get user pages (~ mm/gup.c): pin_user_pages() holds pages for DMA with extra
references; populate_vma_page_range() faults a range in, and mm_populate() (include/linux/mm.h,
__mm_populate() in mm/gup.c) does so for a VM_LOCKED VMA, as mlock(), mlockall() and mmap() after
mlockall(MCL_FUTURE) do.

A pin of a small folio adds GUP_PIN_COUNTING_BIAS (1024) to its refcount; a pin of a large
folio adds 1 to the refcount and 1 to ``_pincount``, per page pinned. Either way the folio
now has more references than mappings, which is what reclaim's lazyfree checks look for.
"""

from __future__ import annotations

from ..include.mm import GUP_PIN_COUNTING_BIAS, VM_LOCKONFAULT, VM_READ, VM_WRITE, is_zero_folio
from ..include.page_flags import folio_set_dirty, folio_test_dirty
from ..include.pgtable import PmdHuge, PteTable, pmd_addr_end, pmd_index, pte_index
from ..state import trace
from ..uapi import PAGE_SIZE
from .huge_memory import touch_pmd
from .memory import handle_mm_fault
from .swap import folio_mark_accessed, folio_put_refs


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
            pte_folio, nr = entry.folio, (pmd_addr_end(addr, end) - addr) // PAGE_SIZE
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


def populate_vma_page_range(vma, start: int, end: int, write: bool) -> None:
    """What mlock() does after locking: fault in every page, and touch the ones present
    (FOLL_TOUCH: a write-touch marks a PMD or page dirty, so lazyfree memory stops being
    lazyfree)."""

    mm = vma.vm_mm
    addr = start
    while addr < end:
        entry = mm.pmds.get(pmd_index(addr))
        if isinstance(entry, PmdHuge) and (entry.write or not write):
            touch_pmd(entry, write)
            addr = pmd_addr_end(addr, end)
            continue
        pte = entry.ptes[pte_index(addr)] if isinstance(entry, PteTable) else None
        if pte is None or (write and not pte.write):
            handle_mm_fault(vma, addr, write)
            continue  # GUP looks the page up again after the fault, and touches it then
        pte.young = True
        if not is_zero_folio(pte.folio):
            if write and not pte.dirty and not folio_test_dirty(pte.folio):
                folio_set_dirty(pte.folio)
            folio_mark_accessed(pte.folio)
        addr += PAGE_SIZE


def mm_populate(vma, start: int, end: int) -> bool:
    """Fault in [start, end) of a VM_LOCKED VMA, with write faults if it is writable (so
    each page gets a folio of its own, not the zero page). Nothing to do for
    VM_LOCKONFAULT; impossible for PROT_NONE (returns False)."""
    if vma.vm_flags & VM_LOCKONFAULT:
        return True
    if not vma.vm_flags & (VM_READ | VM_WRITE):
        return False
    populate_vma_page_range(vma, start, end, write=bool(vma.vm_flags & VM_WRITE))
    return True
