"""Page-table entries as a diagram summarises them: runs of like PTEs, the one-character
summary of a 2 MiB slot, and the places a folio is mapped.

A run is a stretch of consecutive PTEs that a reader would describe in one breath: all
empty, all the zero page, consecutive pages of one large folio, or consecutive small
folios with the same flags; in each case with the same write, dirty and accessed bits.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import NamedTuple

from ..include.mm import is_zero_folio
from ..include.pgtable import PmdHuge, PteTable, pmd_index
from ..include.rmap import anon_vma_vmas
from ..mm.page_vma_mapped import PageVmaMappedWalk, page_vma_mapped_walk
from ..proc import slot_char
from ..uapi import HPAGE_PMD_ORDER, PAGE_SIZE, PTRS_PER_PTE


def bits(entry) -> str:
    """The hardware bits of a PTE or huge PMD in words: ``rw, dirty, accessed``."""
    words = ["rw" if entry.write else "ro"]
    if entry.dirty:
        words.append("dirty")
    if entry.young:
        words.append("accessed")
    return ", ".join(words)


@dataclass(frozen=True)
class PteRun:
    """PTEs ``first``-``last`` of a table. ``kind`` is "none", "zero", "folio" (pages
    ``page``.. of one large ``folio``) or "small" (small folios from ``folio`` on, with
    consecutive PFNs)."""

    first: int
    last: int
    kind: str
    folio: object = None
    page: int = 0
    bits: str = ""

    @property
    def count(self) -> int:
        return self.last - self.first + 1


def _kind(pte) -> str:
    if pte is None:
        return "none"
    if is_zero_folio(pte.folio):
        return "zero"
    return "folio" if pte.folio.order else "small"


def _continues(run: PteRun, pte, index: int) -> bool:
    """Whether ``pte``, at ``index``, extends ``run``."""
    kind = _kind(pte)
    if kind != run.kind:
        return False
    if kind == "none":
        return True
    if bits(pte) != run.bits:
        return False
    step = index - run.first
    if kind == "zero":
        return True
    if kind == "folio":
        return pte.folio is run.folio and pte.page == run.page + step
    return pte.folio.pfn == run.folio.pfn + step and pte.folio.flags == run.folio.flags


def pte_runs(table: PteTable, start: int = 0, stop: int = PTRS_PER_PTE) -> list[PteRun]:
    """The runs of like entries among PTEs ``start`` to ``stop - 1`` of ``table``."""
    out: list[PteRun] = []
    for index in range(start, stop):
        pte = table.ptes[index]
        if out and _continues(out[-1], pte, index):
            last = out[-1]
            out[-1] = PteRun(last.first, index, last.kind, last.folio, last.page, last.bits)
        elif pte is None:
            out.append(PteRun(index, index, "none"))
        else:
            out.append(PteRun(index, index, _kind(pte), pte.folio, pte.page, bits(pte)))
    return out


class SlotPage(NamedTuple):
    """One page of a slot, with just the fields ``proc.slot_char`` reads (a PageInfo has
    them too). A tuple, so a slot's 512 cost little to make: a widget step summarises
    every slot of its region."""

    present: bool
    pfn: int | None = None
    thp: bool | None = None
    pmd_mapped: bool | None = None
    zero_page: bool | None = None


_ABSENT = SlotPage(False)


def slot_pages(entry) -> list[SlotPage]:
    """The 512 pages of the 2 MiB slot a PMD entry covers. Cheaper than the page map, which
    also reads every flag and mapcount."""
    if isinstance(entry, PmdHuge):
        folio = entry.folio
        thp, zero = folio.order >= HPAGE_PMD_ORDER, is_zero_folio(folio)
        return [SlotPage(True, folio.pfn + i, thp, True, zero) for i in range(PTRS_PER_PTE)]
    return [_ABSENT if pte is None else SlotPage(True, pte.folio.pfn + pte.page, pte.folio.order >= HPAGE_PMD_ORDER,
                                                 False, is_zero_folio(pte.folio))
            for pte in entry.ptes]


def slot_summary(mm, start: int) -> str:
    """The slot's character in ``Process.thp_map`` (uapi.SLOT_LEGEND)."""
    entry = mm.pmds.get(pmd_index(start))
    return "-" if entry is None else slot_char(slot_pages(entry))


@dataclass(frozen=True)
class Mapping:
    """One place a folio is mapped: by a huge PMD, or by a run of PTEs mapping its pages
    ``first_page``-``last_page`` from ``address`` on, in mm ``mm`` (a process id)."""

    mm: int
    address: int
    kind: str  # "PMD" or "PTE"
    first_page: int
    last_page: int
    bits: str


def mappings_in(folio, vma, address: int) -> list[Mapping]:
    """Where ``vma``'s page tables map ``folio``, found by page_vma_mapped_walk() from
    ``address`` (where the rmap walk starts in this VMA), PTEs that map consecutive pages
    with the same bits in one page table told as one Mapping."""
    out: list[Mapping] = []
    pvmw = PageVmaMappedWalk(folio, vma, address)
    run_table = None  # the page table of the last run of PTEs
    while page_vma_mapped_walk(pvmw):
        if pvmw.pte is None:
            out.append(Mapping(vma.vm_mm.id, pvmw.address, "PMD", 0, folio.nr_pages - 1, bits(pvmw.pmd)))
            continue
        pte, last = pvmw.pte, out[-1] if out else None
        if (last is not None and pvmw.pmd is run_table and pte.page == last.last_page + 1
                and pvmw.address == last.address + (pte.page - last.first_page) * PAGE_SIZE and bits(pte) == last.bits):
            out[-1] = replace(last, last_page=pte.page)
        else:
            out.append(Mapping(vma.vm_mm.id, pvmw.address, "PTE", pte.page, pte.page, bits(pte)))
            run_table = pvmw.pmd
    return out


def folio_mappings(folio) -> list[Mapping]:
    """Every page-table mapping of an anonymous folio, found as the rmap walk finds them
    (the zero pages are not reverse-mapped: none for them)."""
    return [m for vma, address in anon_vma_vmas(folio) for m in mappings_in(folio, vma, address)]
