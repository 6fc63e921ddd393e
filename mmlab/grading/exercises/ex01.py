"""Exercise 1.1's program: the steps of the learner's variant, in words."""

from __future__ import annotations


def events_program(v) -> list[str]:
    """The program of the learner's variant, one step per line (as the notebook prints it)."""
    size = v.thps * 2
    return [
        f"kernel {v.kernel}; a = mmap({size} MiB); madvise(a, {size} MiB, MADV_HUGEPAGE)",
        f"read one byte of THP slot {v.read_first} (the 2 MiB at a + {v.read_first} * 2 MiB)",
        f"write every byte of every other slot (all {v.thps} slots but slot {v.read_first})",
        f"write one byte in page {v.written_page} of slot {v.read_first}",
        f"mprotect(PROT_READ) the first {v.protected_pages} page(s) of slot {v.protected}",
        f"madvise(MADV_PAGEOUT) page {v.paged_page} (4 KiB) of slot {v.paged}",
    ]
