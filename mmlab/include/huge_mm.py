"""What include/linux/huge_mm.h declares for the rest of mm/: may a fault use a PMD-sized
THP, and the deferred split queue a partly unmapped THP joins.

deferred_split_folio() is defined in mm/huge_memory.c; the model keeps it here, beside its
declaration, because the mapcount bookkeeping (mmlab.include.rmap) calls it when a THP
loses part of its mappings, and that bookkeeping sits below mm/.
"""

from __future__ import annotations

from ..state import count_vm_event, current, trace
from ..uapi import HPAGE_PMD_ORDER, HPAGE_PMD_SIZE
from .mm import VM_HUGEPAGE, VM_NOHUGEPAGE
from .page_flags import folio_set_partially_mapped, folio_test_partially_mapped
from .pgtable import pmd_align_down


def thp_vma_allowable(vma, address: int) -> bool:
    """May a fault at ``address`` be served by a PMD-sized THP (thp_vma_allowable_order)?
    The transparent_hugepage mode is the Machine's (``madvise`` by default, as on this
    project's machines): a THP is faulted only in a VM_HUGEPAGE VMA that covers the whole
    2 MiB."""
    mode = current.machine.thp
    if mode == "never" or vma.vm_flags & VM_NOHUGEPAGE:
        return False
    if mode == "madvise" and not vma.vm_flags & VM_HUGEPAGE:
        return False
    haddr = pmd_align_down(address)
    return vma.vm_start <= haddr and haddr + HPAGE_PMD_SIZE <= vma.vm_end


def deferred_split_folio(folio, partially_mapped: bool) -> None:
    """Queue a THP that lost some of its mappings, to be split under memory pressure."""
    if partially_mapped and not folio_test_partially_mapped(folio):
        folio_set_partially_mapped(folio)
        if folio.order >= HPAGE_PMD_ORDER:
            count_vm_event("thp_deferred_split_page")
    if not folio.deferred_split:
        folio.deferred_split = True
        current.machine.deferred_split_queue[folio] = None
    trace("deferred_split_folio", "partly mapped THP queued for a later split", folio)
