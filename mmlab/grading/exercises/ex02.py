"""Exercise 2.2's tools: page-table layouts around one THP, and a walk driven as kernel code drives it.

The learner writes the PMD case of page_vma_mapped_walk(); ``walk_yields(walk)`` runs it on
the model's page tables for a ``Layout`` and lists what each step pointed at, and
``model_yields`` does the same with the model's own walk, for comparison.
"""

from __future__ import annotations

from dataclasses import dataclass

from mmlab import MADV_DONTNEED, PAGE_SIZE, Machine
from mmlab.include.internal import vma_address
from mmlab.mm.huge_memory import split_huge_pmd_locked
from mmlab.mm.page_vma_mapped import PageVmaMappedWalk, page_vma_mapped_walk, page_vma_mapped_walk_restart
from mmlab.state import running

from ..plain import record_type
from .model import THP, folio_at, pte_map, thp_process

MAX_YIELDS = 2 * 512  # more True returns than a THP has pages: the walk never ends


@record_type
@dataclass(frozen=True)
class Layout:
    """How the page tables around one THP look when its walk starts (built by ``build``).

    kinds: "pmd" (mapped by its huge PMD), "ptes" (by 512 PTEs), "hole" (by PTEs, with pages
    ``first`` to ``last - 1`` unmapped), "other-thp" (the VMA maps another THP there by a PMD),
    "unmapped" (the VMA maps nothing there), "split" (by its PMD, which the caller splits
    under the lock after the walk returns it, then restarts the walk).
    """

    kind: str
    first: int = 0
    last: int = 0

    def __repr__(self):
        if self.kind == "hole":
            return f"Layout(PTE-mapped, pages {self.first}-{self.last - 1} unmapped)"
        return f"Layout({self.kind})"

    def build(self):
        """A fresh machine with this layout: (machine, folio, vma, address where the walk starts)."""
        m = Machine(kernel="6.11")
        p, a = thp_process(m)
        folio = folio_at(p, a)
        if self.kind in ("ptes", "hole"):
            pte_map(p, a)
        if self.kind == "hole":
            p.madvise(a + self.first * PAGE_SIZE, (self.last - self.first) * PAGE_SIZE, MADV_DONTNEED)
        owner = p
        if self.kind in ("other-thp", "unmapped"):
            owner = p.fork()
            owner.madvise(a, THP, MADV_DONTNEED)
            if self.kind == "other-thp":
                owner.write(a, THP, value=3)
        vma = owner.mm.find_vma(a)
        return m, folio, vma, vma_address(vma, folio.index)


def _yields(walk, layout: Layout) -> list[tuple[str, str, str]]:
    """Drive ``walk`` as kernel code does; what each True return pointed at."""
    m, folio, vma, address = layout.build()
    pvmw = PageVmaMappedWalk(folio, vma, address)
    seen = []
    with running(m):
        while walk(pvmw):
            seen.append((hex(pvmw.address), "PTE" if pvmw.pte is not None else "PMD", pvmw.ptl))
            if len(seen) > MAX_YIELDS:
                raise RuntimeError(f"the walk returned True more than {MAX_YIELDS} times; it never ends")
            if layout.kind == "split" and pvmw.pte is None and len(seen) == 1:
                split_huge_pmd_locked(vma, pvmw.address, pvmw.pmd, folio)
                page_vma_mapped_walk_restart(pvmw)
    return seen


def walk_yields(walk):
    """Your walk as the check runs it: a function of a ``Layout`` that calls ``walk(pvmw)``
    until it returns False and lists, for each True, (hex address, "PMD" or "PTE", lock held)."""

    def yields(layout: Layout):
        return _yields(walk, layout)

    yields.__name__ = getattr(walk, "__name__", "walk")
    return yields


def model_yields(layout: Layout):
    """What the model's page_vma_mapped_walk() yields for ``layout``."""
    return _yields(page_vma_mapped_walk, layout)
