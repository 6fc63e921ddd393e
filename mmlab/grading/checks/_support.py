"""What the course's exercise checks share: where in the lectures to send a learner, and the
small model set-ups the checks build their expected answers from.

Nothing here registers a check. Every expected answer is computed by running the model
(``mmlab.Machine``); this module only saves each check module from rebuilding the same
THP, fork or trace reading.
"""

from __future__ import annotations

import errno
from collections.abc import Callable

from mmlab import HPAGE_PMD_SIZE, MADV_HUGEPAGE, PAGE_SIZE, Machine
from mmlab.include.pgtable import PmdHuge, pmd_index

THP = HPAGE_PMD_SIZE

# The lectures' numbered sections, as course/NN-*.ipynb title them (tests/test_exercises.py
# checks that each one is still there).
LECTURES = {
    1: "course/01-folios-and-thp.ipynb",
    2: "course/02-reverse-mapping.ipynb",
    3: "course/03-reclaim-before-the-series.ipynb",
    4: "course/04-mlock.ipynb",
    5: "course/05-madv-free.ipynb",
    6: "course/06-the-series.ipynb",
    7: "course/07-afterwards.ipynb",
}
SECTIONS = {
    "1.2": "A THP fault",
    "1.4": "The huge zero page",
    "1.5": "Reference count and mapcounts",
    "1.6": "PMD-mapped, PTE-mapped, and the two kinds of split",
    "2.3": "fork: a THP shared by two processes",
    "2.5": "page_vma_mapped_walk()",
    "2.6": "Changing the page table under a walk: the restart",
    "3.3": "shrink_folio_list(), for one folio",
    "3.5": "try_to_unmap_one() as 6.10 ran it",
    "3.6": "Watch it: reclaim one lazyfree THP on 6.10",
    "3.8": "A lazyfree THP that was written again",
    "4.3": "Large folios: all or nothing",
    "4.4": "Restoring an mlock that was missed",
    "4.5": "The two VM_LOCKED checks in reclaim",
    "5.4": "Writing again: no fault, only a dirty bit",
    "5.5": "Part of a THP",
    "5.6": "Shared after fork",
    "5.7": "An extra reference",
    "5.8": "mlock and MADV_FREE, in both orders",
    "6.3": "Patch 2/3: the split moves into the walk (`29e847d2ade3`)",
    "6.4": "Patch 3/3: discard a clean lazyfree THP at PMD level (`735ecdfaf4e8`)",
    "6.5": "The refcount rule",
    "6.6": "The v6 mlock condition and its review",
    "7.1": "6.15: Barry Song's batched unmap",
    "7.3": "November 2026: the retreat",
    "7.4": "The puzzle: `thp_split_pmd` +32 on this machine",
}


def section(*numbers: str) -> str:
    """Where to reread, in words: ``section("5.4")`` names the lecture, the section and its notebook."""
    parts = []
    for number in numbers:
        lecture = int(number.split(".")[0])
        parts.append(f"lecture {lecture}, section {number} '{SECTIONS[number]}' ({LECTURES[lecture]})")
    return "; and ".join(parts)


def thp_process(m: Machine, nr_thps: int = 1, value: int = 7):
    """A new process with ``nr_thps`` PMD-mapped THPs, every byte ``value``: (process, address)."""
    p = m.spawn()
    a = p.mmap(nr_thps * THP)
    p.madvise(a, nr_thps * THP, MADV_HUGEPAGE)
    p.write(a, nr_thps * THP, value=value)
    return p, a


def folio_at(p, addr: int):
    """The folio mapped at ``addr`` (by a huge PMD or a PTE), or None."""
    entry = p.mm.pmds.get(pmd_index(addr))
    if isinstance(entry, PmdHuge):
        return entry.folio
    pte = entry.ptes[(addr % THP) // PAGE_SIZE] if entry is not None else None
    return pte.folio if pte is not None else None


def pte_map(p, a: int) -> None:
    """Split the huge PMD at ``a`` and leave the THP mapped by 512 PTEs in one VMA again:
    mprotect() of one page cuts the VMA (and so the PMD), and mprotect() back merges it."""
    from mmlab import PROT_READ, PROT_WRITE

    p.mprotect(a, PAGE_SIZE, PROT_READ)
    p.mprotect(a, PAGE_SIZE, PROT_READ | PROT_WRITE)


def errno_name(call: Callable, *args) -> str:
    """Make one call: "ok", or the errno name it failed with ("EINVAL")."""
    try:
        call(*args)
    except OSError as error:
        return errno.errorcode[error.errno]
    return "ok"
