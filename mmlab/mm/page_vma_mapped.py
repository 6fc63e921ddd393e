"""page_vma_mapped_walk(): find where one folio is mapped inside one VMA (~ mm/page_vma_mapped.c).

The caller fills a walk with the folio, the VMA and the address where the folio would start,
then calls ``page_vma_mapped_walk(pvmw)`` in a loop, as kernel code does. Each True return
leaves the walk holding a page-table lock and pointing at one mapping:

* ``pvmw.pte`` is None and ``pvmw.pmd`` is a PmdHuge: the whole folio is mapped by a PMD
  (the PMD lock is held); the next call ends the walk.
* ``pvmw.pte`` is a Pte: one page is mapped by that PTE (the PTE table's lock is held).

Simplification: no other CPU runs, so locks are recorded (``pvmw.ptl``) rather than taken,
and PVMW_SYNC only changes when the lock is said to be taken.
"""

from __future__ import annotations

from ..include.mm import linear_page_index
from ..include.pgtable import PmdHuge, pmd_addr_end, pmd_align_down, pmd_index, pte_index
from ..uapi import HPAGE_PMD_SIZE, PAGE_SIZE

PVMW_SYNC = 1 << 0
PVMW_PGTABLE_CROSSED = 1 << 16  # 6.18: the walk moved on to another PTE table


class PageVmaMappedWalk:
    """struct page_vma_mapped_walk (DEFINE_FOLIO_VMA_WALK)."""

    __slots__ = ("folio", "vma", "address", "flags", "pmd", "pte", "ptl", "end", "nr_pages")

    def __init__(self, folio, vma, address: int, flags: int = 0):
        self.folio = folio
        self.vma = vma
        self.address = address
        self.flags = flags
        self.nr_pages = folio.nr_pages
        self.pmd = None
        self.pte = None
        self.ptl = None
        # Where the folio's last page would be mapped, clipped to the VMA.
        first = address - (_page_in_folio(folio, vma, address) * PAGE_SIZE)
        self.end = min(vma.vm_end, first + folio.nr_pages * PAGE_SIZE)


def _page_in_folio(folio, vma, address: int) -> int:
    return linear_page_index(vma, address) - folio.index


def page_vma_mapped_walk_done(pvmw: PageVmaMappedWalk) -> None:
    """Leave the walk early: unmap the PTE table and drop the lock."""
    pvmw.ptl = None


def page_vma_mapped_walk_restart(pvmw: PageVmaMappedWalk) -> None:
    """Added by the series (29e847d2ade3): drop the lock and forget the PMD/PTE, so the next
    call descends again from ``pvmw.address`` and sees the page tables as they are now."""
    pvmw.ptl = None
    pvmw.pmd = None
    pvmw.pte = None


def _not_found(pvmw: PageVmaMappedWalk) -> bool:
    page_vma_mapped_walk_done(pvmw)
    pvmw.pmd = pvmw.pte = None
    return False


def page_vma_mapped_walk(pvmw: PageVmaMappedWalk) -> bool:
    """Advance to the next place the folio is mapped in the VMA; False when there is none."""
    pmds = pvmw.vma.vm_mm.pmds
    folio = pvmw.folio
    if pvmw.pmd is not None and pvmw.pte is None:
        return _not_found(pvmw)  # a PMD mapping covers the whole folio: nothing more to find
    if pvmw.pte is not None:
        pvmw.address += PAGE_SIZE
        if pvmw.address & (HPAGE_PMD_SIZE - 1) == 0:
            pvmw.flags |= PVMW_PGTABLE_CROSSED
        elif pvmw.address < pvmw.end:
            # Still in the PTE table whose lock the walk holds: the next entry, if it maps
            # the folio, is the next answer (the usual case: a folio's pages in a row).
            pte = pvmw.pmd.ptes[pte_index(pvmw.address)]
            if pte is not None and pte.folio is folio:
                pvmw.pte = pte
                return True
    while pvmw.address < pvmw.end:
        entry = pmds.get(pmd_index(pvmw.address))
        if entry is None:
            pvmw.address = pmd_align_down(pvmw.address) + HPAGE_PMD_SIZE
            continue
        if isinstance(entry, PmdHuge):
            if entry.folio is not folio:
                return _not_found(pvmw)
            pvmw.pmd, pvmw.pte, pvmw.ptl = entry, None, "PMD lock"
            return True
        table_end = pmd_addr_end(pvmw.address, pvmw.end)
        ptes = entry.ptes
        while pvmw.address < table_end:
            pte = ptes[pte_index(pvmw.address)]
            if pte is not None and pte.folio is folio:
                pvmw.pmd, pvmw.pte, pvmw.ptl = entry, pte, "PTE lock"
                return True
            pvmw.address += PAGE_SIZE
        if pvmw.address < pvmw.end:
            pvmw.flags |= PVMW_PGTABLE_CROSSED
    return _not_found(pvmw)
