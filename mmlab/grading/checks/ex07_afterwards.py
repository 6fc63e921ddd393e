"""Checks of exercises/07-afterwards.ipynb (lecture 7: afterwards).

* ``ex07-fate`` (+ hidden ``ex07-fate-more``): a function predicting what MADV_PAGEOUT does
  to one lazyfree THP (clean, written again, or pinned) on each kernel profile: PMD split or
  not, pages freed, how it is mapped afterwards and whether it is still lazyfree.
* ``ex07-experiment`` (+ hidden ``ex07-experiment-settings``): the learner designs a user-space
  experiment that tells whether a kernel discards lazyfree THPs at PMD level. It gets a
  machine offering only what ``mmlab.live.Machine`` offers too (``ExperimentMachine``), so the
  same function runs on the host's kernel (``on_this_kernel``). The check runs it on a model
  machine of every profile; the expected verdict comes from the model's own trace (did
  __discard_anon_folio_pmd_locked() free a THP?), which no user-space program can see.
"""

from __future__ import annotations

from mmlab import MADV_FREE, MADV_PAGEOUT, PAGE_SIZE, PROFILES, Machine

from ..exercises.ex07 import ExperimentMachine
from ..exercises.model import THP, thp_process
from ..registry import register, register_variant
from ._support import section

# ---------------------------------------------------------------- one lazyfree THP, every kernel

FATE = "ex07-fate"
HISTORIES = ("clean", "written again", "pinned")


def fate(kernel, history):
    """One THP written with 7, MADV_FREE, then ``history`` (see HISTORIES), then MADV_PAGEOUT on
    ``kernel``. What reclaim did, and what it left."""
    if kernel not in PROFILES or history not in HISTORIES:
        raise ValueError(f"kernel is one of {', '.join(PROFILES)}; history one of {', '.join(HISTORIES)}")
    m = Machine(kernel=kernel, trace=False)
    p, a = thp_process(m)
    pin = p.pin(a, PAGE_SIZE) if history == "pinned" else None
    p.madvise(a, THP, MADV_FREE)
    if history == "written again":
        p.write(a + THP // 2, 1, value=9)
    before = dict(m.vmstat)
    p.madvise(a, THP, MADV_PAGEOUT)
    page = p.pagemap(a, PAGE_SIZE)[0]
    outcome = {
        "thp_split_pmd": m.vmstat["thp_split_pmd"] - before["thp_split_pmd"],
        "pglazyfreed": m.vmstat["pglazyfreed"] - before["pglazyfreed"],
        "thp_map": p.thp_map(a, THP),
        "lazyfree": (not page.swapbacked) if page.present else None,
    }
    if pin is not None:
        pin.release()
    return outcome


@register_variant(FATE)
def fate_variant(rng):
    public = [(kernel, history) for kernel in ("6.10", "6.11", "6.15", "6.18.44") for history in HISTORIES]
    return {"public": rng.sample(public, len(public))}


EXPECTS_FATE = (
    "a function fate(kernel, history) returning a dict: the increase of 'thp_split_pmd' and 'pglazyfreed' "
    "caused by MADV_PAGEOUT, the 'thp_map' character of the THP's 2 MiB afterwards, and 'lazyfree' (is the "
    "folio still lazyfree, PG_swapbacked clear; None when nothing is mapped there any more)"
)

register(FATE, points=3, expects=EXPECTS_FATE, section=section("6.4", "7.1", "7.3"), cases=lambda v: list(v.public))(
    fate
)

register(
    "ex07-fate-more",
    points=1,
    exercise=FATE,
    hidden=True,
    expects=EXPECTS_FATE + ", also on the profiles 6.11-v6 and 6.18",
    section=section("6.6", "7.1"),
    cases=lambda v: [(kernel, history) for kernel in ("6.11-v6", "6.18") for history in HISTORIES],
)(fate)


# ---------------------------------------------------------------- the experiment


def discards_at_pmd_level(machine: ExperimentMachine) -> bool:
    """The model's answer for the kernel behind ``machine``: run MADV_FREE and MADV_PAGEOUT on
    one THP with tracing on, and look whether __discard_anon_folio_pmd_locked() freed it."""
    m = Machine(kernel=machine.kernel, thp=machine.thp, use_zero_page=machine.use_zero_page)
    p, a = thp_process(m)
    p.madvise(a, THP, MADV_FREE)
    m.clear_trace()
    p.madvise(a, THP, MADV_PAGEOUT)
    return any(
        e.function == "__discard_anon_folio_pmd_locked" and "discarded at PMD level" in e.message for e in m.trace
    )


EXPERIMENT = "ex07-experiment"


@register_variant(EXPERIMENT)
def experiment_variant(rng):
    return {"thp": rng.choice(["madvise", "always"]), "use_zero_page": rng.random() < 0.5}


def machines(thp: str, use_zero_page: bool) -> list[tuple[ExperimentMachine]]:
    """One fresh machine per kernel profile, as the experiment's cases."""
    return [(ExperimentMachine(kernel, thp, use_zero_page),) for kernel in PROFILES]


EXPECTS_EXPERIMENT = (
    "a function taking a machine and returning True if its kernel discards a clean lazyfree THP at PMD "
    "level (without splitting its PMD), False if not; it may use only spawn(), vmstat and the process "
    "calls of the facade, as on a live machine"
)

register(
    EXPERIMENT,
    points=3,
    expects=EXPECTS_EXPERIMENT + " (your machines: THP {thp}, use_zero_page {use_zero_page})",
    section=section("6.4", "7.3", "7.4"),
    cases=lambda v: machines(v.thp, v.use_zero_page),
)(discards_at_pmd_level)

register(
    "ex07-experiment-settings",
    points=1,
    exercise=EXPERIMENT,
    hidden=True,
    expects=EXPECTS_EXPERIMENT + ", also with the other THP mode and huge-zero-page setting",
    section=section("1.4", "7.4"),
    cases=lambda v: machines("always" if v.thp == "madvise" else "madvise", not v.use_zero_page),
)(discards_at_pmd_level)
