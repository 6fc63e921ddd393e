"""Checks of exercise notebook ``05-madv-free.ipynb``: lazyfree THPs written again before reclaim.

Every expected answer is computed by running the learner's variant on the model
(``mmlab.Machine``, profile 6.11), as Lecture 5 §5.4 does for one case.
"""

from __future__ import annotations

from mmlab import HPAGE_PMD_SIZE, MADV_FREE, MADV_HUGEPAGE, MADV_PAGEOUT, PAGE_SIZE, Machine

from ..registry import register, register_variant

SECTION = "course/05-madv-free.ipynb, §5.4 'Writing again: no fault, only a dirty bit'"
THP_KB = HPAGE_PMD_SIZE // 1024


@register_variant("lazyfree-written")
def lazyfree_written(rng):
    """``nr_thps`` THPs, all marked lazyfree; then one byte is written in each THP of ``written``."""
    nr_thps = rng.randrange(3, 9)
    return {"nr_thps": nr_thps, "written": sorted(rng.sample(range(nr_thps), rng.randrange(1, nr_thps)))}


def run_scenario(nr_thps: int, written: list[int]) -> tuple[int, list[int]]:
    """(smaps LazyFree in kB before reclaim, first byte of each THP after MADV_PAGEOUT) on 6.11."""
    m = Machine(kernel="6.11")
    p = m.spawn()
    size = nr_thps * HPAGE_PMD_SIZE
    a = p.mmap(size)
    p.madvise(a, size, MADV_HUGEPAGE)
    p.write(a, size, value=7)
    p.madvise(a, size, MADV_FREE)
    for thp in written:
        p.write(a + thp * HPAGE_PMD_SIZE + 5 * PAGE_SIZE, 1, value=9)
    lazyfree = p.smaps()["LazyFree"]
    p.madvise(a, size, MADV_PAGEOUT)
    first_bytes = [p.read(a + thp * HPAGE_PMD_SIZE) for thp in range(nr_thps)]
    p.exit()
    return lazyfree, first_bytes


@register(
    "lazyfree-written-kb",
    points=1,
    exercise="lazyfree-written",
    expects="smaps LazyFree (in kB) just before MADV_PAGEOUT, with {nr_thps} THPs and THPs {written} written again",
    section=SECTION,
    mistakes={
        "That counts every THP: a write after MADV_FREE takes a THP out of the LazyFree count.": lambda v: (
            v.nr_thps * THP_KB
        ),
        "That counts 4 KiB pages: one written byte removes the whole 2 MiB THP from LazyFree.": lambda v: (
            v.nr_thps * THP_KB - 4 * len(v.written)
        ),
    },
)
def lazyfree_written_kb(v):
    return run_scenario(v.nr_thps, v.written)[0]


@register(
    "lazyfree-written-survivors",
    points=2,
    exercise="lazyfree-written",
    expects="the first byte of each of the {nr_thps} THPs after MADV_PAGEOUT, as a list in address order",
    section=SECTION,
    mistakes={
        "Reclaim does not free every lazyfree THP: a written one has a dirty PMD and is kept whole.": lambda v: (
            [0] * v.nr_thps
        ),
    },
)
def lazyfree_written_survivors(v):
    return run_scenario(v.nr_thps, v.written)[1]


def lazyfree_kb_after_writes(nr_thps: int, written: list[int]) -> int:
    """The reference for ``predict_lazyfree_kb``: what the model shows."""
    return run_scenario(nr_thps, written)[0]


register(
    "lazyfree-predict",
    points=2,
    exercise="lazyfree-written",
    expects="a function predicting smaps LazyFree in kB from the number of THPs and the list of THPs written",
    section=SECTION,
    cases=lambda v: [(v.nr_thps, v.written)],
)(lazyfree_kb_after_writes)

register(
    "lazyfree-predict-edges",
    points=1,
    exercise="lazyfree-written",
    hidden=True,
    expects="the same prediction to hold when no THP or every THP is written, and when one THP is written twice",
    section=SECTION,
    cases=lambda v: [(4, []), (4, [0, 1, 2, 3]), (5, [2, 2, 4])],
)(lazyfree_kb_after_writes)
