"""Where in the lectures a check sends a learner: the numbered sections feedback names.

The model set-ups the checks share with the exercises are in ``mmlab.grading.exercises.model``.
"""

from __future__ import annotations

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
