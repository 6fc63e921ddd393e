"""Checks of exercises/03-reclaim-before-the-series.ipynb (lecture 3: reclaim before the series, 6.10).

* ``ex03-reclaim-counts``: predict the counters and the Rss after MADV_PAGEOUT of a few
  lazyfree THPs on 6.10, some written again, one perhaps pinned.
* ``ex03-ttu-step`` (+ hidden ``ex03-ttu-step-more``): a function deciding one step of 6.10's
  try_to_unmap_one() (see mmlab.grading.checks._reclaim), checked against the model on
  folios prepared in many ways.
"""

from __future__ import annotations

from mmlab import MADV_FREE, MADV_PAGEOUT, PAGE_SIZE, Machine

from ..exercises.model import THP, thp_process
from ..exercises.reclaim import DECISIONS, Recipe
from ..learner import hidden_rng
from ..registry import register, register_variant
from ._reclaim import decision, steps
from ._support import section

COUNTS = "ex03-reclaim-counts"
COUNTERS = ("thp_split_pmd", "pglazyfreed", "thp_deferred_split_page")


@register_variant(COUNTS)
def counts_variant(rng):
    thps = rng.randrange(3, 8)
    slots = rng.sample(range(thps), rng.randrange(1, 3) + 1)
    rewritten, pinned = sorted(slots[1:]), slots[0] if rng.random() < 0.7 else None
    return {
        "thps": thps,
        "rewritten": [(slot, rng.randrange(512)) for slot in rewritten],
        "pinned": pinned,
    }


def _run(v):
    m = Machine(kernel="6.10", trace=False)
    p, a = thp_process(m, v.thps)
    if v.pinned is not None:
        p.pin(a + v.pinned * THP, PAGE_SIZE)
    p.madvise(a, v.thps * THP, MADV_FREE)
    for slot, page in v.rewritten:
        p.write(a + slot * THP + page * PAGE_SIZE, 1, value=9)
    before = dict(m.vmstat)
    p.madvise(a, v.thps * THP, MADV_PAGEOUT)
    answer = {name: m.vmstat[name] - before[name] for name in COUNTERS}
    answer["Rss"] = p.smaps()["Rss"]
    return answer


def _only_freed_ones_split(v):
    answer = _run(v)
    answer["thp_split_pmd"] = answer["pglazyfreed"] // 512
    return answer


def _thps_not_pages(v):
    answer = _run(v)
    answer["pglazyfreed"] //= 512
    return answer


@register(
    COUNTS,
    points=2,
    expects=(
        "a dict with the increase of thp_split_pmd, pglazyfreed and thp_deferred_split_page caused by "
        "the MADV_PAGEOUT, and the Rss in kB after it, for your {thps} THPs on 6.10"
    ),
    section=section("3.5", "3.6", "3.8"),
    mistakes={
        "On 6.10 try_to_unmap_one() splits the PMD of every THP before its walk, also of the THPs it "
        "then keeps (written again, or pinned).": _only_freed_ones_split,
        "pglazyfreed counts pages, 512 for each THP freed.": _thps_not_pages,
    },
)
def reclaim_counts(v):
    return _run(v)


# ---------------------------------------------------------------- one step of try_to_unmap_one()

STEP = "ex03-ttu-step"


@register_variant(STEP)
def step_variant(rng):
    return {"pages": rng.sample(range(1, 512), 2)}


def public_recipes(v):
    a, b = v.pages
    return [
        Recipe("6.10"),
        Recipe("6.10", rewritten=a),
        Recipe("6.10", pte_mapped=True, rewritten=b),
        Recipe("6.10", pinned=True),
        Recipe("6.10", thp=False),
        Recipe("6.10", thp=False, rewritten=0),
        Recipe("6.10", locked=True),
    ]


def hidden_recipes(v):
    b, c = hidden_rng(v).sample(range(1, 512), 2)
    return [
        Recipe("6.10", pte_mapped=True, rewritten=0),
        Recipe("6.10", pte_mapped=True, touched=c),
        Recipe("6.10", shared=True),
        Recipe("6.10", thp=False, pinned=True),
        Recipe("6.10", thp=False, locked=True),
        Recipe("6.10", pte_mapped=True, rewritten=b, locked=True),
    ]


EXPECTS_STEP = (
    "a function ttu_step_6_10(step) returning what 6.10's try_to_unmap_one() decides at that step of "
    "its walk, one of " + ", ".join(map(repr, DECISIONS))
)

register(STEP, points=3, expects=EXPECTS_STEP, section=section("3.3", "3.5"), cases=lambda v: steps(public_recipes(v)))(
    decision
)

register(
    "ex03-ttu-step-more",
    points=2,
    exercise=STEP,
    hidden=True,
    expects=EXPECTS_STEP + ", also for a dirty folio behind a clean PTE, a shared THP and locked VMAs",
    section=section("3.5", "3.8", "4.5"),
    cases=lambda v: steps(hidden_recipes(v)),
)(decision)
