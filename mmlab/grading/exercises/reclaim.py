"""One step of try_to_unmap_one(), as the exercises of lectures 3 and 6 ask for it.

A ``Recipe`` says how one folio was prepared (THP or small, PMD- or PTE-mapped, made
lazyfree, written again, pinned, shared with a child, in an mlocked VMA); a ``WalkStep`` is
what the first step of reclaim's rmap walk over it sees, which the learner's function is
given; ``DECISIONS`` are what that step can decide. The checks (``mmlab.grading.checks``)
prepare each recipe on the model and read the model's decision from its trace.
"""

from __future__ import annotations

from dataclasses import dataclass

from mmlab import MADV_FREE, MLOCK_ONFAULT, PAGE_SIZE, Machine

from ..plain import record_type
from .model import THP, folio_at, pte_map, thp_process

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


@record_type
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


@record_type
@dataclass(frozen=True)
class WalkStep:
    """What try_to_unmap_one() of ``kernel`` knows at the first step of its walk over a folio.

    It says nothing of how the folio was prepared: a learner's function given the ``Recipe``
    could prepare it again and read the model's decision instead of deciding.

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
    kernel: str

    def __repr__(self):
        where = "PMD" if self.pmd_mapped else "PTE"
        return (
            f"<{where} of {'THP' if self.large else 'small folio'}{', VM_LOCKED' if self.vma_locked else ''}: "
            f"{'lazyfree' if self.lazyfree else 'swap-backed'}, folio {'dirty' if self.folio_dirty else 'clean'}, "
            f"{where} {'dirty' if self.entry_dirty else 'clean'}, ref {self.refcount}, map {self.mapcount}>"
        )
