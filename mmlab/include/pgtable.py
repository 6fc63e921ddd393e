"""Page-table entries: a PMD that maps a THP directly, a PTE table of 512 entries, and the
PTEs in it (arch/x86/include/asm/pgtable*.h, reduced to the bits the story needs).

An entry refers to its folio and page directly where the hardware holds a PFN; the model
keeps the hardware's accessed ("young") and dirty bits, which MADV_FREE clears and a later
write sets again without any fault.
"""

from __future__ import annotations

from ..uapi import HPAGE_PMD_SIZE, PAGE_SHIFT, PMD_SHIFT, PTRS_PER_PTE


class Pte:
    """A present page-table entry mapping one page of ``folio``."""

    __slots__ = ("folio", "page", "write", "dirty", "young")

    def __init__(self, folio, page: int, write: bool, dirty: bool = False, young: bool = True):
        self.folio = folio
        self.page = page
        self.write = write
        self.dirty = dirty
        self.young = young

    def __repr__(self):
        bits = "".join(b for b, on in (("w", self.write), ("d", self.dirty), ("a", self.young)) if on)
        return f"<pte pfn={self.folio.pfn + self.page:#x} {bits}>"


class PmdHuge:
    """A PMD entry that maps a whole PMD-sized folio (pmd_trans_huge)."""

    __slots__ = ("folio", "write", "dirty", "young")

    def __init__(self, folio, write: bool, dirty: bool = False, young: bool = True):
        self.folio = folio
        self.write = write
        self.dirty = dirty
        self.young = young

    def __repr__(self):
        bits = "".join(b for b, on in (("w", self.write), ("d", self.dirty), ("a", self.young)) if on)
        return f"<pmd huge pfn={self.folio.pfn:#x} {bits}>"


class PteTable:
    """A page of 512 PTEs, the table a non-huge PMD entry points to."""

    __slots__ = ("ptes",)

    def __init__(self):
        self.ptes: list[Pte | None] = [None] * PTRS_PER_PTE

    def empty(self) -> bool:
        return not any(self.ptes)


def pmd_index(address: int) -> int:
    return address >> PMD_SHIFT


def pte_index(address: int) -> int:
    return (address >> PAGE_SHIFT) & (PTRS_PER_PTE - 1)


def get_and_clear_ptes(ptes: list, first: int, nr: int) -> tuple[list, bool]:
    """Clear ``nr`` PTEs from ``ptes[first]`` on and return what they held, and whether any
    of them was dirty (get_and_clear_full_ptes() folds the dirty bits into the one PTE value
    it returns; reclaim before 6.15 cleared one PTE at a time with ptep_get_and_clear())."""
    if nr == 1:  # reclaim before 6.15, once per PTE of every THP: no slices to build
        pte = ptes[first]
        ptes[first] = None
        return [pte], pte.dirty
    cleared = ptes[first:first + nr]
    ptes[first:first + nr] = [None] * nr
    return cleared, any(pte.dirty for pte in cleared)


def pmd_trans_huge(entry) -> bool:
    return isinstance(entry, PmdHuge)


def pmd_align_down(address: int) -> int:
    """The start of the 2 MiB a PMD entry covers (address & HPAGE_PMD_MASK)."""
    return address & ~(HPAGE_PMD_SIZE - 1)


def pmd_align(address: int) -> int:
    """The first 2 MiB boundary at or above ``address`` (ALIGN(address, HPAGE_PMD_SIZE))."""
    return pmd_align_down(address + HPAGE_PMD_SIZE - 1)


def pmd_addr_end(address: int, end: int) -> int:
    """Where the walk of [address, end) leaves the PMD of ``address``: the next 2 MiB
    boundary, or ``end`` if that comes first."""
    return min(pmd_align_down(address) + HPAGE_PMD_SIZE, end)
