"""The errno each system call gives for bad input, and what it did before failing.

Rules from Debian's 6.12.117 source: madvise(2) in mm/madvise.c (madvise_behavior_valid(),
the alignment checks in do_madvise(), madvise_dontneed_free_valid_vma(),
can_madv_lru_vma(), and madvise_walk_vmas(), which handles the mapped parts before
reporting ENOMEM for a hole); mlock2(2) and munlock(2) in mm/mlock.c (flag check,
apply_vma_lock_flags(), __mlock_posix_error_return()); mprotect(2) in mm/mprotect.c
(do_mprotect_pkey()); munmap(2) in mm/vma.c (do_vmi_munmap()).
"""

from __future__ import annotations

import errno

import pytest

from mmlab import (
    MADV_COLD,
    MADV_DONTNEED,
    MADV_FREE,
    MADV_HUGEPAGE,
    MADV_NOHUGEPAGE,
    MADV_PAGEOUT,
    MLOCK_ONFAULT,
    PAGE_SIZE,
    PROT_NONE,
    PROT_READ,
    PROT_WRITE,
    Machine,
    MiB,
)
from mmlab.debug import check_invariants


def region(size: int = 4 * PAGE_SIZE, value: int = 5):
    m = Machine(trace=False)
    p = m.spawn()
    a = p.mmap(size)
    p.write(a, size, value)
    return m, p, a


def errno_of(call, *args) -> int | None:
    try:
        call(*args)
    except OSError as err:
        return err.errno
    return None


def vma_flags(p, addr: int) -> tuple[str, ...]:
    (block,) = [v for v in p.smaps().vmas if v.start <= addr < v.end]
    return block.flags


@pytest.mark.parametrize("advice", [MADV_FREE, MADV_DONTNEED, MADV_COLD, MADV_PAGEOUT])
@pytest.mark.parametrize("onfault", [False, True])
def test_madvise_refuses_to_free_or_push_out_mlocked_memory(advice, onfault):
    # MADV_FREE/DONTNEED: madvise_dontneed_free_valid_vma() forbids VM_LOCKED (only
    # MADV_DONTNEED_LOCKED may); MADV_COLD/PAGEOUT: can_madv_lru_vma() refuses VM_LOCKED.
    m, p, a = region()
    p.mlock2(a, 4 * PAGE_SIZE, MLOCK_ONFAULT if onfault else 0)
    assert errno_of(p.madvise, a, 4 * PAGE_SIZE, advice) == errno.EINVAL
    assert p.read(a) == 5 and p.smaps()["LazyFree"] == 0
    check_invariants(m)


@pytest.mark.parametrize("advice", [MADV_HUGEPAGE, MADV_NOHUGEPAGE])
def test_madvise_may_change_thp_advice_on_mlocked_memory(advice):
    m, p, a = region()
    p.mlock(a, 4 * PAGE_SIZE)
    p.madvise(a, 4 * PAGE_SIZE, advice)


def test_madvise_stops_at_the_first_mlocked_vma_after_handling_the_ones_before():
    # madvise_walk_vmas() visits VMAs in address order and returns the first error.
    m, p, a = region()
    p.mlock(a + 2 * PAGE_SIZE, 2 * PAGE_SIZE)
    assert errno_of(p.madvise, a, 4 * PAGE_SIZE, MADV_DONTNEED) == errno.EINVAL
    assert [p.read(a + i * PAGE_SIZE) for i in range(4)] == [0, 0, 5, 5]
    check_invariants(m)


def test_madvise_outside_any_mapping_is_enomem():
    m, p, a = region()
    assert errno_of(p.madvise, a + 64 * MiB, PAGE_SIZE, MADV_FREE) == errno.ENOMEM


def test_madvise_over_a_hole_handles_the_mapped_part_then_says_enomem():
    m, p, a = region()
    p.munmap(a + PAGE_SIZE, PAGE_SIZE)
    assert errno_of(p.madvise, a, 4 * PAGE_SIZE, MADV_DONTNEED) == errno.ENOMEM
    assert (p.read(a), p.read(a + 2 * PAGE_SIZE), p.read(a + 3 * PAGE_SIZE)) == (0, 0, 0)
    check_invariants(m)


def test_madvise_needs_a_page_aligned_start():
    m, p, a = region()
    assert errno_of(p.madvise, a + 1, PAGE_SIZE, MADV_FREE) == errno.EINVAL


def test_madvise_with_length_zero_does_nothing():
    m, p, a = region()
    assert errno_of(p.madvise, a, 0, MADV_DONTNEED) is None and p.read(a) == 5


@pytest.mark.parametrize("advice", [1234, -1, 7])
def test_madvise_rejects_advice_it_does_not_know(advice):
    m, p, a = region()
    assert errno_of(p.madvise, a, PAGE_SIZE, advice) == errno.EINVAL


@pytest.mark.parametrize("flags", [0x2, MLOCK_ONFAULT | 0x100, -1])
def test_mlock2_rejects_unknown_flags(flags):
    m, p, a = region()
    assert errno_of(p.mlock2, a, PAGE_SIZE, flags) == errno.EINVAL
    assert "lo" not in vma_flags(p, a)


@pytest.mark.parametrize("call", ["mlock", "munlock", "mprotect"])
def test_calls_on_an_unmapped_start_are_enomem(call):
    m, p, a = region()
    args = (PROT_READ,) if call == "mprotect" else ()
    assert errno_of(getattr(p, call), a + 64 * MiB, PAGE_SIZE, *args) == errno.ENOMEM


def test_mlock_over_a_hole_locks_what_comes_before_it_and_populates_nothing():
    # apply_vma_lock_flags() stops with -ENOMEM at the hole; do_mlock() returns before
    # __mm_populate().
    m = Machine(trace=False)
    p = m.spawn()
    a = p.mmap(4 * PAGE_SIZE)
    p.munmap(a + 2 * PAGE_SIZE, PAGE_SIZE)
    assert errno_of(p.mlock, a, 4 * PAGE_SIZE) == errno.ENOMEM
    assert "lo" in vma_flags(p, a) and "lo" not in vma_flags(p, a + 3 * PAGE_SIZE)
    assert p.smaps()["Rss"] == 0
    check_invariants(m)


def test_mprotect_over_a_hole_changes_what_comes_before_it():
    m, p, a = region()
    p.munmap(a + 2 * PAGE_SIZE, PAGE_SIZE)
    assert errno_of(p.mprotect, a, 4 * PAGE_SIZE, PROT_READ) == errno.ENOMEM
    assert p.smaps().vmas[0].perms == "r--p" and p.smaps().vmas[-1].perms == "rw-p"
    check_invariants(m)


def test_mlock_of_a_prot_none_range_locks_it_but_says_enomem():
    # populate_vma_page_range() returns -EFAULT for an inaccessible VMA; do_mlock() turns it
    # into ENOMEM (__mlock_posix_error_return()); the VMA stays locked.
    m, p, a = region()
    p.mprotect(a, 4 * PAGE_SIZE, PROT_NONE)
    assert errno_of(p.mlock, a, 4 * PAGE_SIZE) == errno.ENOMEM
    assert "lo" in vma_flags(p, a)
    assert errno_of(p.mlock2, a, 4 * PAGE_SIZE, MLOCK_ONFAULT) is None  # VM_LOCKONFAULT: nothing to fault
    check_invariants(m)


def test_mprotect_and_munmap_need_a_page_aligned_start():
    m, p, a = region()
    assert errno_of(p.mprotect, a + 1, PAGE_SIZE, PROT_READ | PROT_WRITE) == errno.EINVAL
    assert errno_of(p.munmap, a + 1, PAGE_SIZE) == errno.EINVAL


def test_munmap_of_nothing_is_einval_and_over_a_hole_is_fine():
    m, p, a = region()
    assert errno_of(p.munmap, a, 0) == errno.EINVAL
    assert errno_of(p.munmap, a + 2 * PAGE_SIZE, 64 * MiB) is None
    assert p.smaps()["Size"] == 8
    check_invariants(m)
