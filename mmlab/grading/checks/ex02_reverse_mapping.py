"""Checks of exercises/02-reverse-mapping.ipynb (lecture 2: reverse mapping).

* ``ex02-fork-cow`` (+ hidden ``ex02-fork-cow-reuse``): a function predicting a THP's
  refcount and mapcounts after fork() and copy-on-write writes in parent and children.
* ``ex02-walk-pmd`` (+ hidden ``ex02-walk-pmd-more``): the learner writes the PMD case of
  page_vma_mapped_walk(); the check runs it, through ``walk_yields``, on page tables the model
  builds and compares every step with the model's own walk.
"""

from __future__ import annotations

from mmlab import PAGE_SIZE, Machine
from mmlab.include.mm import folio_entire_mapcount, folio_mapcount, folio_precise_page_mapcount

from ..exercises.ex02 import Layout, model_yields
from ..exercises.model import folio_at, thp_process
from ..registry import register, register_variant
from ._support import section

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
