"""Checks of exercises/06-the-series.ipynb (lecture 6: the series).

* ``ex06-discard`` (+ hidden ``ex06-discard-more``): the conditions of
  __discard_anon_folio_pmd_locked() as a function of (folio dirty, PMD dirty, refcount,
  mapcount), checked against the model's function on every profile that has it.
* ``ex06-ttu-step`` (+ hidden ``ex06-ttu-step-more``): one step of 6.11's try_to_unmap_one(),
  the learner's 6.10 function of exercise 3 turned into 6.11's (see _reclaim).
* ``ex06-v6-verdict``: does the v6 mlock condition ever change what happens? The expected
  answer is found by running every sequence of up to ``SEARCH_DEPTH`` calls (``V6_CALLS``),
  each followed by LRU reclaim and MADV_PAGEOUT, on 6.11-v6 and looking in the trace for the
  one thing the condition can do: restore the mlock of a large folio in try_to_unmap_one().
"""

from __future__ import annotations

import functools
import itertools

from mmlab import MADV_FREE, PROFILES, Machine
from mmlab.include.mm import folio_get
from mmlab.include.page_flags import folio_set_dirty
from mmlab.include.pgtable import pmd_index
from mmlab.mm.huge_memory import __discard_anon_folio_pmd_locked
from mmlab.mm.vmscan import folio_isolate_lru
from mmlab.state import running

from ..exercises.ex06 import SEARCH_DEPTH, V6_CALLS, run_calls
from ..exercises.model import THP, thp_process
from ..exercises.reclaim import DECISIONS, Recipe
from ..learner import hidden_rng
from ..registry import register, register_variant
from ._reclaim import decision, steps
from ._support import section

# ---------------------------------------------------------------- the PMD-level discard

DISCARD = "ex06-discard"
DISCARDING_PROFILES = tuple(name for name, profile in PROFILES.items() if profile.pmd_lazyfree_discard)


def _discards_on(kernel: str, folio_dirty: bool, pmd_dirty: bool, refcount: int, mapcount: int) -> bool:
    """Prepare a PMD-mapped lazyfree THP in that state on ``kernel``, isolated as reclaim has it,
    and call the model's __discard_anon_folio_pmd_locked() on its first mapping."""
    m = Machine(kernel=kernel)
    p, a = thp_process(m)
    p.madvise(a, THP, MADV_FREE)
    for _ in range(mapcount - 1):
        p.fork()  # each child maps the THP with a PMD of its own
    entry = p.mm.pmds[pmd_index(a)]
    folio = entry.folio
    with running(m):
        folio_isolate_lru(folio)
        for _ in range(refcount - mapcount - 1):
            folio_get(folio)  # a reference nobody can explain (a pin, a lookup in flight)
        if folio_dirty:
            folio_set_dirty(folio)
        entry.dirty = pmd_dirty
        return __discard_anon_folio_pmd_locked(p.mm.find_vma(a), a, entry, folio)


def discards(folio_dirty, pmd_dirty, refcount, mapcount):
    """Does __discard_anon_folio_pmd_locked() free the THP? The same answer on every profile
    with a PMD-level discard, or the check is broken."""
    if not 1 <= mapcount <= 8 or refcount < mapcount + 1:
        raise ValueError("a reclaimable THP has 1 to 8 mappings and at least mapcount + 1 references")
    answers = {k: _discards_on(k, folio_dirty, pmd_dirty, refcount, mapcount) for k in DISCARDING_PROFILES}
    if len(set(answers.values())) != 1:
        raise RuntimeError(f"the profiles disagree: {answers}")
    return answers[DISCARDING_PROFILES[0]]


def _discard_case(dirty_folio, dirty_pmd, extra, mapcount):
    return (dirty_folio, dirty_pmd, mapcount + 1 + extra, mapcount)


@register_variant(DISCARD)
def discard_variant(rng):
    return {
        "public": [
            _discard_case(False, False, 0, 1),
            _discard_case(False, True, 0, 1),
            _discard_case(True, False, 0, 1),
            _discard_case(False, False, rng.randrange(1, 4), 1),
            _discard_case(False, False, 0, rng.randrange(2, 5)),
            _discard_case(True, True, 0, 1),
        ]
    }


def hidden_discard_cases(v):
    """The hidden check's cases: THPs that several processes map, and more references."""
    rng = hidden_rng(v)
    shared = rng.randrange(2, 5)
    return [
        _discard_case(False, False, rng.randrange(1, 4), shared),
        _discard_case(False, True, 0, shared),
        _discard_case(True, False, 1, 1),
        _discard_case(False, False, 0, rng.randrange(2, 9)),
    ]


EXPECTS_DISCARD = (
    "a function discards(folio_dirty, pmd_dirty, refcount, mapcount): True when "
    "__discard_anon_folio_pmd_locked() frees the lazyfree THP at PMD level (refcount counts "
    "reclaim's own reference), on every kernel that has the PMD-level discard"
)

register(DISCARD, points=2, expects=EXPECTS_DISCARD, section=section("6.4", "6.5"), cases=lambda v: list(v.public))(
    discards
)

register(
    "ex06-discard-more",
    points=1,
    exercise=DISCARD,
    hidden=True,
    expects=EXPECTS_DISCARD + "; also for a THP that several processes map",
    section=section("6.5"),
    cases=hidden_discard_cases,
)(discards)


# ---------------------------------------------------------------- one step of 6.11's try_to_unmap_one()

STEP = "ex06-ttu-step"


@register_variant(STEP)
def step_variant(rng):
    return {"page": rng.randrange(1, 512)}


def public_recipes(v):
    a = v.page
    return [
        Recipe("6.11"),
        Recipe("6.11", rewritten=a),
        Recipe("6.11", pinned=True),
        Recipe("6.11", pte_mapped=True),
        Recipe("6.11", pte_mapped=True, rewritten=0),
        Recipe("6.11", thp=False),
        Recipe("6.11", locked=True),
    ]


def hidden_recipes(v):
    b = hidden_rng(v).randrange(1, 512)
    return [
        Recipe("6.11", shared=True),
        Recipe("6.11", lazyfree=False),
        Recipe("6.11", lazyfree=False, locked=True),
        Recipe("6.11", pte_mapped=True, touched=b),
        Recipe("6.11", thp=False, locked=True),
        Recipe("6.11", thp=False, pinned=True),
    ]


EXPECTS_STEP = (
    "a function ttu_step_6_11(step) returning what 6.11's try_to_unmap_one() decides at that step of "
    "its walk, one of " + ", ".join(map(repr, DECISIONS))
)

register(STEP, points=3, expects=EXPECTS_STEP, section=section("6.3", "6.4"), cases=lambda v: steps(public_recipes(v)))(
    decision
)

register(
    "ex06-ttu-step-more",
    points=2,
    exercise=STEP,
    hidden=True,
    expects=EXPECTS_STEP + ", also for a shared THP, a swap-backed THP and locked VMAs",
    section=section("6.3", "6.4", "6.6"),
    cases=lambda v: steps(hidden_recipes(v)),
)(decision)


# ---------------------------------------------------------------- the v6 mlock condition


@functools.cache
def v6_search() -> str | list[str]:
    """ "none" if no sequence of up to SEARCH_DEPTH calls lets the v6 condition act on 6.11-v6,
    else the first such sequence."""
    for depth in range(SEARCH_DEPTH + 1):
        for calls in itertools.product(V6_CALLS, repeat=depth):
            if run_calls("6.11-v6", calls)["restored a large folio's mlock in try_to_unmap_one"]:
                return list(calls)
    return "none"


register(
    "ex06-v6-verdict",
    points=1,
    exercise="ex06-v6",
    expects=(
        f"'none' if no sequence of up to {SEARCH_DEPTH} calls from V6_CALLS (each followed by LRU reclaim and "
        "MADV_PAGEOUT) lets the v6 condition change anything, else such a sequence, as a list of calls"
    ),
    section=section("4.5", "6.6"),
)(lambda v: v6_search())
