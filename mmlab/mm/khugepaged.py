"""MADV_COLLAPSE (~ mm/khugepaged.c): madvise_collapse() and collapse_huge_page() copy
the small pages of an aligned 2 MiB into a new THP mapped by one PMD. The model has no
khugepaged thread; only the synchronous collapse madvise() asks for."""

from __future__ import annotations

import errno

from ..include.highmem import page_copy
from ..include.mm import VM_NOHUGEPAGE, VM_WRITE, folio_mapcount, folio_ref_count
from ..include.page_flags import PG
from ..include.pgtable import PmdHuge, pmd_align, pmd_index
from ..include.rmap import folio_remove_rmap_ptes
from ..state import count_vm_event, trace
from ..uapi import HPAGE_PMD_NR, HPAGE_PMD_ORDER, HPAGE_PMD_SIZE
from .memory import alloc_anon_folio
from .swap import folio_put


def madvise_collapse(vma, start: int, end: int) -> None:
    """MADV_COLLAPSE on one VMA: make every 2 MiB-aligned range inside [start, end) a
    PMD-mapped THP now, whatever the transparent_hugepage mode, by copying its pages into a
    new THP (collapse_huge_page()). A range already mapped by a huge PMD (even the huge
    zero page) counts as done; the others are tried one by one, and the error of the last
    failure is returned once all were tried: EINVAL for a range with no page table or no
    anonymous page in it, EAGAIN for one holding a page with extra references (a pin).
    A VM_NOHUGEPAGE VMA, or one too small to hold an aligned 2 MiB, is refused (EINVAL).

    As 6.18.44 behaves (the rules above were checked on it); 6.12's scan also refused a
    range with no writable PTE (SCAN_PAGE_RO), which 6.18.44 collapses: when that changed
    is not established, so the model collapses read-only ranges in every profile. Shared
    pages (after fork) are copied: the other process keeps its own."""
    first = pmd_align(vma.vm_start)
    if vma.vm_flags & VM_NOHUGEPAGE or first + HPAGE_PMD_SIZE > vma.vm_end:
        raise OSError(errno.EINVAL, f"MADV_COLLAPSE: {vma!r} cannot hold a THP")
    failed = None
    haddr = pmd_align(start)
    while haddr + HPAGE_PMD_SIZE <= end:
        failed = collapse_huge_page(vma, haddr) or failed
        haddr += HPAGE_PMD_SIZE
    if failed:
        raise OSError(failed, f"MADV_COLLAPSE: some of {start:#x}-{end:#x} could not be collapsed")


def collapse_huge_page(vma, haddr: int) -> int | None:
    """Collapse the 2 MiB at ``haddr`` into a new THP; None when it is (or already was)
    PMD-mapped, else the errno of why not. The old pages lose this mapping (and are freed
    if it was their last); empty PTEs and the zero page become zeros in the THP."""
    mm = vma.vm_mm
    index = pmd_index(haddr)
    table = mm.pmds.get(index)
    if isinstance(table, PmdHuge):
        return None
    if table is None:
        trace("collapse_huge_page", f"{haddr:#x}: no page table here (SCAN_PMD_NULL)")
        return errno.EINVAL
    present = [pte for pte in table.ptes if pte is not None and not pte.folio.flags & PG.zero]
    if not present:
        trace("collapse_huge_page", f"{haddr:#x}: no anonymous page to collapse")
        return errno.EINVAL
    for folio in {pte.folio: None for pte in present}:
        if folio_ref_count(folio) != folio_mapcount(folio):
            trace("collapse_huge_page", "extra references (a pin?): SCAN_PAGE_COUNT", folio)
            return errno.EAGAIN
    thp = alloc_anon_folio(vma, haddr, HPAGE_PMD_ORDER)
    count_vm_event("thp_collapse_alloc")
    for i, pte in enumerate(table.ptes):
        if pte is not None and not pte.folio.flags & PG.zero:
            thp.data[i] = page_copy(pte.folio.data[pte.page])
            folio_remove_rmap_ptes(pte.folio, pte.page, 1, vma)
            folio_put(pte.folio)
    mm.MM_ANONPAGES += HPAGE_PMD_NR - len(present)
    table.ptes = [None] * HPAGE_PMD_NR
    mm.deposited[index] = table
    mm.pmds[index] = PmdHuge(thp, write=bool(vma.vm_flags & VM_WRITE), dirty=True)
    trace("collapse_huge_page", f"{haddr:#x}: {len(present)} page(s) copied into a new THP, mapped by one PMD", thp)
    return None
