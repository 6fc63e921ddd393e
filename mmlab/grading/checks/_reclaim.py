"""One step of try_to_unmap_one(), as the exercises of lectures 3 and 6 ask for it.

A ``Recipe`` says how one folio was prepared (THP or small, PMD- or PTE-mapped, made
lazyfree, written again, pinned, shared with a child, in an mlocked VMA). ``observe()``
prepares it on a fresh model machine, isolates it as reclaim does, and runs try_to_unmap()
with the flags shrink_folio_list() passes. It returns what the first step of the rmap walk
saw (a ``WalkStep``: what the learner's function is given) and what the model decided there
(one of ``DECISIONS``), read from the model's trace.

On 6.10 the PMD is split before the walk; ``observe()`` does that split itself, just before
try_to_unmap(), so that the step it reports is the one the walk really sees (the split in
try_to_unmap_one() then finds no PMD left to split).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

from mmlab import MADV_FREE, MLOCK_ONFAULT, PAGE_SIZE, Machine
from mmlab.include.mm_types import VM_LOCKED, folio_mapcount, vma_address
from mmlab.include.page_flags import folio_test_dirty, folio_test_large, folio_test_lazyfree, folio_test_pmd_mappable
from mmlab.mm.huge_memory import split_huge_pmd_address
from mmlab.mm.page_vma_mapped import PageVmaMappedWalk, page_vma_mapped_walk, page_vma_mapped_walk_done
from mmlab.mm.rmap import TTU_BATCH_FLUSH, TTU_SPLIT_HUGE_PMD, TTU_SYNC, try_to_unmap
from mmlab.mm.vmscan import folio_isolate_lru, folio_putback_lru
from mmlab.state import running

from ._support import THP, folio_at, pte_map, thp_process

MLOCK_ABORT = "mlock, abort"
ABORT = "abort"
DISCARD_PTE = "discard PTE"
DISCARD_PMD = "discard PMD"
SPLIT_RESTART = "split PMD, restart"
SWAPBACKED_ABORT = "set swapbacked, abort"
DECISIONS = (MLOCK_ABORT, ABORT, DISCARD_PTE, DISCARD_PMD, SPLIT_RESTART, SWAPBACKED_ABORT)
"""What one step of try_to_unmap_one() can decide, in words:

* "mlock, abort": the VMA is VM_LOCKED; mark the folio mlocked ("restore the mlock which
  got missed") and stop the walk: the folio stays mapped;
* "abort": stop the walk and leave everything as it is;
* "discard PTE": clear this PTE (or this batch of PTEs) and drop its mapping: the memory
  is thrown away, nothing written anywhere;
* "discard PMD": clear the huge PMD and drop the whole THP's mapping at once;
* "split PMD, restart": split the huge PMD into PTEs under the lock the walk holds and
  restart the walk, which then meets the PTEs;
* "set swapbacked, abort": put the entry back, set PG_swapbacked (the folio is no longer
  lazyfree) and stop the walk.
"""


@dataclass(frozen=True)
class Recipe:
    """How one folio is prepared before reclaim reaches it (see ``prepare``)."""

    kernel: str
    thp: bool = True
    pte_mapped: bool = False
    lazyfree: bool = True
    rewritten: int | None = None
    touched: int | None = None  # page mlock()ed and munlock()ed: its folio dirty, its PTE clean
    pinned: bool = False
    shared: bool = False
    locked: bool = False

    def prepare(self):
        """A fresh machine with the folio prepared: (machine, process, address, folio)."""
        m = Machine(kernel=self.kernel)
        if self.thp:
            p, a = thp_process(m)
            if self.pte_mapped:
                pte_map(p, a)
        else:
            p = m.spawn()
            a = p.mmap(THP)
            p.write(a, PAGE_SIZE, value=7)
        folio = folio_at(p, a + (THP - PAGE_SIZE if self.thp else 0))
        if self.pinned:
            p.pin(a + (THP - PAGE_SIZE if self.thp else 0), PAGE_SIZE)
        length = THP if self.thp else PAGE_SIZE
        if self.lazyfree:
            p.madvise(a, length, MADV_FREE)
        if self.rewritten is not None:
            p.write(a + self.rewritten * PAGE_SIZE, 1, value=9)
        if self.touched is not None:
            # mlock's populate touches the present PTE for writing (FOLL_TOUCH | FOLL_WRITE in
            # follow_page_pte()): a clean PTE's folio is marked dirty, the PTE stays clean.
            p.mlock(a + self.touched * PAGE_SIZE, PAGE_SIZE)
            p.munlock(a + self.touched * PAGE_SIZE, PAGE_SIZE)
        if self.shared:
            p.fork()
        if self.locked:
            p.mlock2(a, length, MLOCK_ONFAULT)
        return m, p, a, folio


@dataclass(frozen=True)
class WalkStep:
    """What try_to_unmap_one() knows at the first step of its walk over a folio.

    ``pmd_mapped``: the walk returned the huge PMD (pvmw.pte is NULL), else one PTE;
    ``entry_dirty``: the hardware dirty bit of that PMD or PTE; ``folio_dirty``: PG_dirty;
    ``refcount`` includes the reference reclaim took when it isolated the folio;
    ``split_flag``: TTU_SPLIT_HUGE_PMD is set in the flags.
    """

    vma_locked: bool
    pmd_mapped: bool
    large: bool
    lazyfree: bool
    folio_dirty: bool
    entry_dirty: bool
    refcount: int
    mapcount: int
    split_flag: bool
    recipe: Recipe = field(compare=False, repr=False)

    def __repr__(self):
        where = "PMD" if self.pmd_mapped else "PTE"
        return (
            f"<{where} of {'THP' if self.large else 'small folio'}{', VM_LOCKED' if self.vma_locked else ''}: "
            f"{'lazyfree' if self.lazyfree else 'swap-backed'}, folio {'dirty' if self.folio_dirty else 'clean'}, "
            f"{where} {'dirty' if self.entry_dirty else 'clean'}, ref {self.refcount}, map {self.mapcount}>"
        )


@functools.lru_cache(maxsize=512)
def observe(recipe: Recipe) -> tuple[WalkStep, str]:
    """Prepare ``recipe``, run reclaim's try_to_unmap() on the folio: (first step, decision)."""
    m, p, a, folio = recipe.prepare()
    flags = TTU_BATCH_FLUSH
    if folio_test_pmd_mappable(folio):
        flags |= TTU_SPLIT_HUGE_PMD
    if folio_test_large(folio):
        flags |= TTU_SYNC
    vma = p.mm.find_vma(a)
    with running(m):
        folio_isolate_lru(folio)
        if m.kernel.split_pmd_before_walk and flags & TTU_SPLIT_HUGE_PMD:
            split_huge_pmd_address(vma, vma_address(vma, folio.index), folio)
        step = _first_step(folio, vma, recipe, bool(flags & TTU_SPLIT_HUGE_PMD))
        m.clear_trace()
        try_to_unmap(folio, flags)
        decision = first_decision(m.trace)
        folio_putback_lru(folio)
    return step, decision


def _first_step(folio, vma, recipe: Recipe, split_flag: bool) -> WalkStep:
    pvmw = PageVmaMappedWalk(folio, vma, vma_address(vma, folio.index))
    if not page_vma_mapped_walk(pvmw):
        raise RuntimeError(f"{recipe}: the folio is not mapped where the walk starts")
    entry = pvmw.pte if pvmw.pte is not None else pvmw.pmd
    step = WalkStep(
        vma_locked=bool(vma.vm_flags & VM_LOCKED),
        pmd_mapped=pvmw.pte is None,
        large=folio_test_large(folio),
        lazyfree=folio_test_lazyfree(folio),
        folio_dirty=folio_test_dirty(folio),
        entry_dirty=entry.dirty,
        refcount=folio._refcount,
        mapcount=folio_mapcount(folio),
        split_flag=split_flag,
        recipe=recipe,
    )
    page_vma_mapped_walk_done(pvmw)
    return step


def first_decision(events) -> str:
    """The first decision try_to_unmap_one() made, read from the trace of one try_to_unmap()."""
    for event in events:
        message = event.message
        if event.function == "__split_huge_pmd_locked":
            return SPLIT_RESTART
        if event.function == "__discard_anon_folio_pmd_locked":
            if "discarded at PMD level" in message:
                return DISCARD_PMD
            if "set PG_swapbacked" in message:
                return SWAPBACKED_ABORT
            continue  # refused: the caller decides next (split, or abort)
        if event.function != "try_to_unmap_one":
            continue
        if message.startswith("VM_LOCKED"):
            return MLOCK_ABORT if "restored the mlock" in message else ABORT
        if "discard" in message and message.startswith("clean lazyfree folio"):
            return DISCARD_PTE
        if "set PG_swapbacked" in message:
            return SWAPBACKED_ABORT
        if "abort" in message:
            return ABORT
    raise RuntimeError("the trace shows no decision of try_to_unmap_one()")


def decision(step: WalkStep) -> str:
    """What the model decided at ``step`` (the reference answer of the step exercises)."""
    return observe(step.recipe)[1]


def steps(recipes) -> list[tuple[WalkStep]]:
    """The exercise cases for ``recipes``: one (step,) per recipe, as the check calls the learner's function."""
    return [(observe(recipe)[0],) for recipe in recipes]
