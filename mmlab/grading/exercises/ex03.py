"""Exercise 3.1's program: the steps of the learner's variant, in words."""

from __future__ import annotations


def reclaim_program(v) -> list[str]:
    """The learner's program, one step per line."""
    lines = [f"kernel 6.10; {v.thps} THPs ({2 * v.thps} MiB), every byte written with 7"]
    if v.pinned is not None:
        lines.append(f"pin one page of THP {v.pinned} (held until the end)")
    lines.append(f"madvise(MADV_FREE) all {2 * v.thps} MiB")
    lines += [f"write one byte in page {page} of THP {slot}" for slot, page in v.rewritten]
    lines.append(f"madvise(MADV_PAGEOUT) all {2 * v.thps} MiB")
    return lines
