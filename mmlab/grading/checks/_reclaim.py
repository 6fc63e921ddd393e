"""The model's decision at the first step of try_to_unmap_one(), for the step exercises.

``observe()`` prepares a ``Recipe`` on a fresh model machine, isolates the folio as reclaim
does, and runs try_to_unmap() with the flags shrink_folio_list() passes. It returns what the
first step of the rmap walk saw (a ``WalkStep``) and what the model decided there (one of
``DECISIONS``), read from the model's trace.

On 6.10 the PMD is split before the walk; ``observe()`` does that split itself, just before
try_to_unmap(), so that the step it reports is the one the walk really sees (the split in
try_to_unmap_one() then finds no PMD left to split).
"""

from __future__ import annotations

import functools

from mmlab.include.internal import vma_address
from mmlab.include.mm import VM_LOCKED, folio_mapcount
from mmlab.include.page_flags import folio_test_dirty, folio_test_large, folio_test_lazyfree, folio_test_pmd_mappable
from mmlab.include.rmap import TTU_BATCH_FLUSH, TTU_SPLIT_HUGE_PMD, TTU_SYNC
from mmlab.mm.huge_memory import split_huge_pmd_address
from mmlab.mm.page_vma_mapped import PageVmaMappedWalk, page_vma_mapped_walk, page_vma_mapped_walk_done
from mmlab.mm.rmap import try_to_unmap
from mmlab.mm.vmscan import folio_isolate_lru, folio_putback_lru
from mmlab.state import running

from ..exercises.reclaim import (
    ABORT,
    DISCARD_PMD,
    DISCARD_PTE,
    MLOCK_ABORT,
    SPLIT_RESTART,
    SWAPBACKED_ABORT,
    Recipe,
    WalkStep,
)

_decided: dict[WalkStep, str] = {}


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
    if _decided.setdefault(step, decision) != decision:
        raise RuntimeError(f"{recipe}: another preparation with the same first step, {step!r}, is decided otherwise")
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
        kernel=recipe.kernel,
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
    """What the model decided at ``step`` (the reference answer of the step exercises), one of
    the steps ``steps()`` gave the learner's function."""
    return _decided[step]


def steps(recipes) -> list[tuple[WalkStep]]:
    """The exercise cases for ``recipes``: one (step,) per recipe, as the check calls the learner's function."""
    return [(observe(recipe)[0],) for recipe in recipes]
