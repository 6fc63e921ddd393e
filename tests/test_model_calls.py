"""Byte-exact memory, zap and dirtiness, pins across fork(), mremap(), MADV_COLLAPSE and
mlockall() in the model, under every profile (none of these differs between the profiles).

Each expected value follows a rule of the kernel, named in the test: the errno checks of
mm/mremap.c, mm/mlock.c and mm/khugepaged.c (Debian linux-source 6.12), and what 6.18.44
showed for the same calls (the scenarios byte-exact, zap-keeps-folio-clean, pin-and-fork,
mremap-thp, madv-collapse and mlockall in tests/data/host-6.18.44/).
"""

from __future__ import annotations

import errno

import pytest

from mmlab import (
    MADV_COLLAPSE,
    MADV_DONTNEED,
    MADV_FREE,
    MADV_HUGEPAGE,
    MADV_NOHUGEPAGE,
    MADV_NORMAL,
    MADV_PAGEOUT,
    MCL_CURRENT,
    MCL_FUTURE,
    MCL_ONFAULT,
    MREMAP_FIXED,
    MREMAP_MAYMOVE,
    PAGE_SIZE,
    PROFILES,
    PROT_READ,
    Machine,
    MiB,
    SegmentationFault,
)
from mmlab.debug import check_invariants

THP = 2 * MiB
KERNELS = sorted(PROFILES)


def region(m, size=2 * THP, huge=True, value=None):
    p = m.spawn()
    a = p.mmap(size)
    p.madvise(a, size, MADV_HUGEPAGE if huge else MADV_NOHUGEPAGE)
    if value is not None:
        p.write(a, size, value)
    return p, a


def errno_of(call, *args) -> int | None:
    try:
        call(*args)
    except OSError as e:
        return e.errno
    return None


def folio_of(m, p, addr):
    return m.folios[p.pagemap(addr, PAGE_SIZE)[0].pfn]


# ---------------------------------------------------------------- byte-exact memory


@pytest.mark.parametrize("kernel", KERNELS)
def test_a_write_stores_exactly_the_bytes_it_covers_across_page_and_thp_boundaries(kernel):
    m = Machine(kernel, trace=False)
    p, a = region(m)
    p.write(a + THP - 2, 4, 5)  # two bytes in THP 0, two in THP 1: both fault in
    assert p.thp_map(a, 2 * THP) == "HH"
    assert [p.read(a + THP + d) for d in (-3, -2, -1, 0, 1, 2)] == [0, 5, 5, 5, 5, 0]
    p.write(a + PAGE_SIZE - 1, 3, 6)
    assert [p.read(a + PAGE_SIZE + d) for d in (-2, -1, 0, 1, 2)] == [0, 6, 6, 6, 0]
    check_invariants(m)


@pytest.mark.parametrize("kernel", KERNELS)
def test_bytes_survive_copy_on_write_and_a_folio_split(kernel):
    m = Machine(kernel, trace=False)
    p, a = region(m, THP, value=1)
    p.write(a + 10, 1, 9)
    child = p.fork()
    p.write(a + 11, 1, 8)  # the parent's page 0 becomes a copy: byte 10 must come along
    assert (p.read(a + 10), p.read(a + 11), child.read(a + 10), child.read(a + 11)) == (9, 8, 9, 1)
    child.exit()
    p.madvise(a, THP // 2, MADV_FREE)  # part of the folio: it is split
    assert (p.read(a + 10), p.read(a + 11), p.read(a + 12)) == (9, 8, 1)
    check_invariants(m)


def test_a_whole_page_fill_keeps_one_value_per_page():
    """The fast path: a page written whole is one int, not 4096 bytes of its own."""
    m = Machine(trace=False)
    p, a = region(m, THP, value=3)
    p.write(a + 5, 1, 4)
    data = folio_of(m, p, a).data
    assert all(isinstance(page, int) for page in data[1:]) and len(data[0]) == PAGE_SIZE


def test_a_write_that_would_fault_stores_nothing():
    m = Machine(trace=False)
    p, a = region(m, THP, value=1)
    p.mprotect(a + PAGE_SIZE, PAGE_SIZE, PROT_READ)
    with pytest.raises(SegmentationFault):
        p.write(a, 2 * PAGE_SIZE, 7)
    assert p.read(a) == 1
    with pytest.raises(ValueError, match="negative"):
        p.write(a, -1, 7)


# ---------------------------------------------------------------- zap leaves the folio clean


@pytest.mark.parametrize("kernel", KERNELS)
def test_zapping_a_dirty_pte_does_not_dirty_a_lazyfree_folio(kernel):
    """zap_present_folio_ptes() moves a PTE's dirty bit to the folio for file folios only;
    an anon folio's remaining clean pages stay lazyfree and are discarded (pglazyfreed 511,
    as on 6.18.44). The MADV_PAGEOUT covers the folio in part (page 1 is gone), so it
    splits it first in every profile."""
    m = Machine(kernel, trace=False)
    p, a = region(m, THP, value=1)
    p.madvise(a, THP, MADV_FREE)
    p.mprotect(a, PAGE_SIZE, PROT_READ)  # splits the clean PMD: PTEs and folio clean
    p.write(a + PAGE_SIZE, PAGE_SIZE, 2)  # a dirty PTE, no fault
    p.madvise(a + PAGE_SIZE, PAGE_SIZE, MADV_DONTNEED)
    before = m.vmstat["pglazyfreed"]
    p.madvise(a, THP, MADV_PAGEOUT)
    assert m.vmstat["pglazyfreed"] - before == 511
    assert p.smaps()["Rss"] == 0 and p.read(a + 2 * PAGE_SIZE) == 0
    check_invariants(m)


# ---------------------------------------------------------------- pins and fork


@pytest.mark.parametrize("kernel", KERNELS)
def test_a_pin_after_fork_breaks_copy_on_write_first(kernel):
    """pin_user_pages(FOLL_WRITE) write-faults a shared page: the parent's PMD is split and
    page 0 copied (do_huge_pmd_wp_page() falls back to wp_page_copy()); the child keeps the
    THP, mapped whole by its PMD."""
    m = Machine(kernel, trace=False)
    p, a = region(m, THP, value=1)
    child = p.fork()
    split = m.vmstat["thp_split_pmd"]
    pin = p.pin(a, PAGE_SIZE)
    assert m.vmstat["thp_split_pmd"] - split == 1
    assert p.thp_map(a, THP) == "x" and child.thp_map(a, THP) == "H"
    assert folio_of(m, p, a) is not folio_of(m, child, a)
    pin.release()
    check_invariants(m)


@pytest.mark.parametrize("kernel", KERNELS)
def test_fork_copies_every_page_of_a_pinned_thp_into_the_child(kernel):
    """A pinned THP is not shared: copy_huge_pmd() splits the PMD, and each PTE of a folio
    that may be pinned (folio_maybe_dma_pinned(): _pincount) is copied for the child."""
    m = Machine(kernel, trace=False)
    p, a = region(m, THP, value=1)
    pin = p.pin(a, PAGE_SIZE)
    child = p.fork()
    assert p.thp_map(a, THP) == "T" and child.thp_map(a, THP) == "s"
    assert sum(page.thp for page in child.pagemap(a, THP)) == 0 and child.read(a) == 1
    pin.release()
    check_invariants(m)


# ---------------------------------------------------------------- mremap


@pytest.mark.parametrize("kernel", KERNELS)
def test_mremap_moves_a_thp_whole_to_an_aligned_destination(kernel):
    """move_huge_pmd(): both ends 2 MiB aligned and the whole PMD moving: no split."""
    m = Machine(kernel, trace=False)
    p, a = region(m, THP, value=1)
    p.write(a + 5, 1, 9)
    b = p.mmap(2 * THP)
    split = m.vmstat["thp_split_pmd"]
    assert p.mremap(a, THP, THP, MREMAP_MAYMOVE | MREMAP_FIXED, b) == b
    assert m.vmstat["thp_split_pmd"] == split and p.thp_map(b, 2 * THP) == "H-"
    assert p.read(b + 5) == 9 and p.pagemap(a, PAGE_SIZE)[0].present is False
    check_invariants(m)


@pytest.mark.parametrize("kernel", KERNELS)
def test_mremap_to_an_unaligned_destination_splits_the_pmd(kernel):
    """An unaligned destination cannot hold a huge PMD: move_page_tables() splits it and
    moves 512 PTEs, which now straddle two page tables. The folio stays one THP, and the
    rmap still finds it there: MADV_FREE + MADV_PAGEOUT free all 512 pages."""
    m = Machine(kernel, trace=False)
    p, a = region(m, THP, value=1)
    b = p.mmap(2 * THP)
    split = m.vmstat["thp_split_pmd"]
    new = b + PAGE_SIZE
    assert p.mremap(a, THP, THP, MREMAP_MAYMOVE | MREMAP_FIXED, new) == new
    assert m.vmstat["thp_split_pmd"] - split == 1 and p.thp_map(b, 2 * THP) == "tt"
    assert sum(page.thp for page in p.pagemap(new, THP)) == 512
    p.madvise(new, THP, MADV_FREE)
    freed = m.vmstat["pglazyfreed"]
    p.madvise(new, THP, MADV_PAGEOUT)
    assert m.vmstat["pglazyfreed"] - freed == 512 and p.smaps()["Rss"] == 0
    check_invariants(m)


def test_mremap_shrinks_and_grows_in_place():
    m = Machine(trace=False)
    p, a = region(m, THP, value=1)
    assert p.mremap(a, THP, THP // 2, 0, 0) == a
    assert p.smaps()["Rss"] == 1024
    assert p.mremap(a, THP // 2, THP, 0, 0) == a  # the space after it is free
    assert p.read(a + THP // 2) == 0 and p.read(a) == 1
    check_invariants(m)


@pytest.mark.parametrize(("args", "expected"), [
    ((0, THP, THP, MREMAP_FIXED, THP), errno.EINVAL),  # MREMAP_FIXED without MREMAP_MAYMOVE
    ((1, PAGE_SIZE, PAGE_SIZE, 0, 0), errno.EINVAL),  # unaligned old address
    ((0, THP, 0, 0, 0), errno.EINVAL),  # zero new length
    ((0, THP, THP, 8, 0), errno.EINVAL),  # an unknown flag
    ((0, THP, THP, MREMAP_MAYMOVE | MREMAP_FIXED, PAGE_SIZE), errno.EINVAL),  # overlapping
    ((0, 0, PAGE_SIZE, MREMAP_MAYMOVE, 0), errno.EINVAL),  # old length 0: shared mappings only
    ((-4 * THP, THP, THP, MREMAP_MAYMOVE, 0), errno.EFAULT),  # nothing mapped there
    ((0, 2 * THP, 3 * THP, 0, 0), errno.EFAULT),  # the old range runs past the VMA
    ((0, THP, 3 * THP, 0, 0), errno.ENOMEM),  # would grow into the next mapping, may not move
])
def test_mremap_errors_are_the_kernels(args, expected):
    """The checks of SYSCALL_DEFINE5(mremap), mremap_to() and vma_to_resize() (mm/mremap.c),
    in their order; the first five were seen on 6.18.44 too."""
    m = Machine(trace=False)
    p, a = region(m, THP, value=1)
    p.mmap(THP)  # the next mapping, 2 MiB after this one ends
    old, old_len, new_len, flags, new = args
    assert errno_of(p.mremap, a + old, old_len, new_len, flags, a + new if new else 0) == expected
    assert p.read(a) == 1
    check_invariants(m)


# ---------------------------------------------------------------- MADV_COLLAPSE


@pytest.mark.parametrize("kernel", KERNELS)
def test_madv_collapse_copies_small_pages_into_a_thp(kernel):
    m = Machine(kernel, trace=False)
    p, a = region(m, 2 * THP, huge=False, value=1)
    p.write(a + 7, 1, 9)
    assert errno_of(p.madvise, a, 2 * THP, MADV_COLLAPSE) == errno.EINVAL  # VM_NOHUGEPAGE
    p.madvise(a, 2 * THP, MADV_HUGEPAGE)
    before = m.vmstat["thp_collapse_alloc"]
    p.madvise(a, 2 * THP, MADV_COLLAPSE)
    assert m.vmstat["thp_collapse_alloc"] - before == 2 and p.thp_map(a, 2 * THP) == "HH"
    assert (p.read(a + 7), p.read(a + 8)) == (9, 1) and p.smaps()["Rss"] == 4096
    check_invariants(m)


def test_madv_collapse_fails_on_a_pinned_page_after_collapsing_the_rest():
    """hpage_collapse_scan_pmd(): a folio with references beyond its mappings is
    SCAN_PAGE_COUNT, which madvise_collapse_errno() turns into EAGAIN; the other range is
    collapsed first (6.18.44 did the same)."""
    m = Machine(trace=False)
    p, a = region(m, 2 * THP, huge=False, value=1)
    p.madvise(a, 2 * THP, MADV_HUGEPAGE)
    pin = p.pin(a + THP, PAGE_SIZE)
    assert errno_of(p.madvise, a, 2 * THP, MADV_COLLAPSE) == errno.EAGAIN
    assert p.thp_map(a, 2 * THP) == "Hs"
    pin.release()
    assert errno_of(p.madvise, a, 2 * THP, MADV_COLLAPSE) is None and p.thp_map(a, 2 * THP) == "HH"
    check_invariants(m)


def test_madv_collapse_refuses_empty_ranges_and_too_small_vmas():
    m = Machine(trace=False)
    p, a = region(m, 2 * THP)
    assert errno_of(p.madvise, a, THP, MADV_COLLAPSE) == errno.EINVAL  # no page table (SCAN_PMD_NULL)
    p.read(a)  # the huge zero page: already PMD-mapped, nothing to do
    assert errno_of(p.madvise, a, THP, MADV_COLLAPSE) is None and p.thp_map(a, THP) == "Z"
    assert errno_of(p.madvise, a, PAGE_SIZE, MADV_COLLAPSE) is None  # no aligned 2 MiB inside: nothing
    p.mprotect(a + THP, PAGE_SIZE, PROT_READ)  # a 4 KiB VMA cannot hold a THP
    assert errno_of(p.madvise, a + THP, PAGE_SIZE, MADV_COLLAPSE) == errno.EINVAL
    check_invariants(m)


def test_madv_collapse_of_a_page_shared_with_a_child_leaves_the_child_its_pages():
    m = Machine(trace=False)
    p, a = region(m, THP, huge=False, value=1)
    p.madvise(a, THP, MADV_HUGEPAGE)
    child = p.fork()
    p.madvise(a, THP, MADV_COLLAPSE)
    assert p.thp_map(a, THP) == "H" and child.thp_map(a, THP) == "s" and child.read(a) == 1
    check_invariants(m)


def test_madv_normal_leaves_the_thp_advice_alone():
    """MADV_NORMAL only resets read-ahead hints (madvise_update_vma() in mm/madvise.c)."""
    m = Machine(trace=False)
    p, a = region(m, THP, huge=False)
    p.madvise(a, THP, MADV_NORMAL)
    p.write(a, THP, 1)
    assert p.thp_map(a, THP) == "s"


# ---------------------------------------------------------------- mlockall


@pytest.mark.parametrize("flags", [0, MCL_ONFAULT, 8, MCL_CURRENT | 8])
def test_mlockall_refuses_bad_flags(flags):
    """No MCL_CURRENT or MCL_FUTURE, MCL_ONFAULT alone, or an unknown bit: EINVAL."""
    m = Machine(trace=False)
    assert errno_of(m.spawn().mlockall, flags) == errno.EINVAL


@pytest.mark.parametrize("kernel", KERNELS)
def test_mlockall_current_locks_and_populates_every_mapping(kernel):
    m = Machine(kernel, trace=False)
    p, a = region(m, 2 * THP)
    p.write(a, THP, 1)
    before = dict(m.vmstat)
    p.mlockall(MCL_CURRENT)  # THP 1 is faulted in (a write fault: the VMA is writable)
    assert m.vmstat["thp_fault_alloc"] - before["thp_fault_alloc"] == 1
    assert m.vmstat["nr_mlock"] - before["nr_mlock"] == 1024 and p.smaps()["Locked"] == 4096
    p.munlockall()
    assert m.vmstat["nr_mlock"] == before["nr_mlock"] and p.smaps()["Locked"] == 0
    check_invariants(m)


def test_mlockall_onfault_locks_what_is_there_and_what_comes():
    m = Machine(trace=False)
    p, a = region(m, 2 * THP)
    p.write(a, THP, 1)
    p.mlockall(MCL_CURRENT | MCL_ONFAULT)
    assert p.smaps()["Locked"] == 2048 and p.thp_map(a, 2 * THP) == "H-"
    p.write(a + THP, PAGE_SIZE, 2)
    assert p.smaps()["Locked"] == 4096
    check_invariants(m)


def test_mlockall_future_locks_and_populates_the_next_mapping():
    """mm->def_flags: the new VMA is VM_LOCKED and mm_populate() write-faults it at once, in
    4 KiB pages (it has no MADV_HUGEPAGE yet); MCL_ONFAULT locks it without populating.
    A child does not inherit MCL_FUTURE."""
    m = Machine(trace=False)
    p = m.spawn()
    p.mlockall(MCL_FUTURE)
    b = p.mmap(THP)
    assert p.thp_map(b, THP) == "s" and p.smaps()["Locked"] == 2048
    child = p.fork()
    c = child.mmap(THP)
    assert child.smaps().range(c, THP)["Rss"] == 0
    p.mlockall(MCL_FUTURE | MCL_ONFAULT)
    d = p.mmap(THP)
    assert p.smaps().range(d, THP)["Rss"] == 0
    p.write(d, PAGE_SIZE, 1)
    assert p.smaps().range(d, THP)["Locked"] == 4
    p.munlockall()
    assert p.smaps()["Locked"] == 0 and p.mmap(THP) and p.smaps()["Locked"] == 0
    check_invariants(m)


def test_mlockall_skips_prot_none_mappings_without_an_error():
    """mm_populate() ignores errors: a PROT_NONE VMA is locked but not populated."""
    m = Machine(trace=False)
    p, a = region(m, THP)
    p.mprotect(a, THP, 0)
    p.mlockall(MCL_CURRENT)
    assert p.smaps()["Rss"] == 0
    p.munlockall()
