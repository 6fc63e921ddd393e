"""Checks of exercises/04-mlock.ipynb (lecture 4: mlock).

* ``ex04-mlock-calls`` (+ hidden ``ex04-mlock-calls-more``): a function predicting, after a
  sequence of mlock()/munlock() calls on a whole THP or half of it, whether the THP is mlocked,
  how it is mapped, how many locked VMAs cover it and what smaps reports as Locked; the hidden
  check adds longer sequences (an mlock() of a range that is locked already does nothing).
"""

from __future__ import annotations

from mmlab import Machine
from mmlab.include.mm import VM_LOCKED
from mmlab.include.page_flags import folio_test_mlocked

from ..exercises.model import THP, folio_at, thp_process
from ..learner import hidden_rng
from ..registry import register, register_variant
from ._support import section

CALLS = (
    "mlock all",
    "mlock first half",
    "mlock second half",
    "munlock all",
    "munlock first half",
    "munlock second half",
)
PARTS = {"all": (0, THP), "first half": (0, THP // 2), "second half": (THP // 2, THP // 2)}


def mlock_outcome(calls):
    """Make ``calls`` (names from CALLS) on one written THP, in order; what it ends as."""
    m = Machine(kernel="6.11")
    p, a = thp_process(m)
    folio = folio_at(p, a)
    for call in calls:
        if call not in CALLS:
            raise ValueError(f"unknown call {call!r}; the calls are {', '.join(CALLS)}")
        name, part = call.split(" ", 1)
        offset, length = PARTS[part]
        getattr(p, name)(a + offset, length)
    return {
        "mlocked": folio_test_mlocked(folio),
        "thp_map": p.thp_map(a, THP),
        "locked_vmas": sum(bool(vma.vm_flags & VM_LOCKED) for vma in p.mm.vmas_in(a, a + THP)),
        "Locked": p.smaps()["Locked"],
    }


EXERCISE = "ex04-mlock-calls"


def _sequence(rng, length):
    return tuple(rng.choice(CALLS) for _ in range(length))


@register_variant(EXERCISE)
def calls_variant(rng):
    return {
        "public": [
            ("mlock all",),
            ("mlock first half",),
            ("mlock first half", "mlock second half"),
            ("mlock all", rng.choice(["munlock first half", "munlock second half"])),
            _sequence(rng, 2),
            _sequence(rng, 3),
        ]
    }


def hidden_calls(v):
    """The hidden check's sequences: longer, some of them fixed, the rest the learner's own."""
    rng = hidden_rng(v)
    return [
        ("mlock first half", "mlock second half", "mlock all"),
        ("mlock first half", "mlock second half", "munlock all", "mlock all"),
        ("mlock all", "munlock second half", "mlock second half"),
        _sequence(rng, 4),
        _sequence(rng, 5),
    ]


EXPECTS = (
    "a function mlock_outcome(calls) returning a dict: 'mlocked' (PG_mlocked set on the THP), 'thp_map' "
    "(its one character), 'locked_vmas' (how many VM_LOCKED VMAs cover its 2 MiB) and 'Locked' (smaps, kB)"
)

register(EXERCISE, points=3, expects=EXPECTS, section=section("4.3", "4.4"), cases=lambda v: [(c,) for c in v.public])(
    mlock_outcome
)

register(
    "ex04-mlock-calls-more",
    points=2,
    exercise=EXERCISE,
    hidden=True,
    expects=EXPECTS + ", also for longer sequences of calls",
    section=section("4.3", "4.4"),
    cases=lambda v: [(c,) for c in hidden_calls(v)],
)(mlock_outcome)
