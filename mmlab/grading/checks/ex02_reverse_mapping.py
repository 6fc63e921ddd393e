"""Checks of exercises/02-reverse-mapping.ipynb (lecture 2: reverse mapping).

* ``ex02-fork-cow`` (+ hidden ``ex02-fork-cow-reuse``): a function predicting a THP's
  refcount and mapcounts after fork() and copy-on-write writes in parent and children.
* ``ex02-walk-pmd`` (+ hidden ``ex02-walk-pmd-more``): the learner writes the PMD case of
  page_vma_mapped_walk(); the check runs it, through ``walk_yields``, on page tables the model
  builds and compares every step with the model's own walk.
"""

from __future__ import annotations

from dataclasses import dataclass

from mmlab import MADV_DONTNEED, PAGE_SIZE, Machine
from mmlab.grading import register, register_variant
from mmlab.include.mm_types import folio_entire_mapcount, folio_mapcount, folio_precise_page_mapcount, vma_address
from mmlab.mm.huge_memory import split_huge_pmd_locked
from mmlab.mm.page_vma_mapped import PageVmaMappedWalk, page_vma_mapped_walk, page_vma_mapped_walk_restart
from mmlab.state import running

from ._support import THP, folio_at, pte_map, section, thp_process

# ---------------------------------------------------------------- fork and copy-on-write

FORK = "ex02-fork-cow"


def fork_cow_counts(parent_writes, child_writes):
    """Fork one child per entry of ``child_writes``; child i then writes the first
    ``child_writes[i]`` pages of the THP, and after all of them the parent writes its first
    ``parent_writes`` pages. The THP's counters at the end."""
    if not all(isinstance(w, int) and 0 <= w <= 512 for w in (parent_writes, *child_writes)):
        raise ValueError("every number of pages written is from 0 to 512")
    m = Machine(kernel="6.11")
    p, a = thp_process(m)
    folio = folio_at(p, a)
    children = [p.fork() for _ in child_writes]
    for child, pages in zip(children, child_writes, strict=True):
        if pages:
            child.write(a, pages * PAGE_SIZE, value=9)
    if parent_writes:
        p.write(a, parent_writes * PAGE_SIZE, value=8)
    return {
        "refcount": folio._refcount,
        "mapcount": folio_mapcount(folio),
        "entire_mapcount": folio_entire_mapcount(folio),
        "nr_pages_mapped": folio._nr_pages_mapped,
        "kpagecount_last": folio_precise_page_mapcount(folio, 511),
    }


@register_variant(FORK)
def fork_variant(rng):
    def some_pages():
        return rng.randrange(1, 512)

    return {
        "cases": [
            (0, (0,)),
            (0, (some_pages(),)),
            (0, (0, some_pages())),
            (some_pages(), (0,)),
            (0, (some_pages(), some_pages(), 0)),
            (some_pages(), (some_pages(), 512)),
        ]
    }


EXPECTS_FORK = (
    "a function fork_cow_counts(parent_writes, child_writes) returning a dict with the THP's refcount, "
    "mapcount, entire_mapcount, nr_pages_mapped and kpagecount_last (the /proc/kpagecount of its last "
    "page) after one fork() per child and the copy-on-write writes, children first, then the parent"
)

register(FORK, points=3, expects=EXPECTS_FORK, section=section("1.5", "2.3"), cases=lambda v: list(v.cases))(
    fork_cow_counts
)

register(
    "ex02-fork-cow-reuse",
    points=1,
    exercise=FORK,
    hidden=True,
    expects=EXPECTS_FORK + "; also when every child has copied all 512 pages before the parent writes",
    section=section("1.5", "2.3"),
    cases=lambda v: [(1, (512,)), (300, (512, 512)), (512, (512, 0)), (512, (100,))],
)(fork_cow_counts)


# ---------------------------------------------------------------- page_vma_mapped_walk

MAX_YIELDS = 2 * 512  # more True returns than a THP has pages: the walk never ends


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


WALK = "ex02-walk-pmd"


@register_variant(WALK)
def walk_variant(rng):
    first = rng.randrange(1, 400)
    return {"hole": (first, first + rng.randrange(1, 100))}


EXPECTS_WALK = (
    "walk_yields(your walk): your walk returns True once for each place the folio is mapped in the "
    "VMA, pointing at it as page_vma_mapped_walk() does ((hex address, 'PMD' or 'PTE', the lock "
    "held), in address order), then False"
)

register(
    WALK,
    points=3,
    expects=EXPECTS_WALK,
    section=section("2.5"),
    cases=lambda v: [(Layout("pmd"),), (Layout("ptes"),), (Layout("hole", *v.hole),)],
)(model_yields)

register(
    "ex02-walk-pmd-more",
    points=2,
    exercise=WALK,
    hidden=True,
    expects=EXPECTS_WALK + ", also when the PMD maps another folio, maps nothing, or was split and the walk restarted",
    section=section("2.5", "2.6"),
    cases=lambda v: [(Layout("other-thp"),), (Layout("unmapped"),), (Layout("split"),)],
)(model_yields)
