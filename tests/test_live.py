"""The live lab's facade on this machine's kernel: real syscalls in real child processes.
Skipped, with the reason, where there is no Linux with THP and root (mmlab.app.pytest_plugin)."""

import ctypes
import errno
import json
import mmap
import os
import signal

import pytest

from mmlab import (
    HPAGE_PMD_SIZE,
    MADV_FREE,
    MADV_HUGEPAGE,
    MADV_PAGEOUT,
    PAGE_SIZE,
    PROT_READ,
    PROT_WRITE,
    MiB,
    SegmentationFault,
    proc,
)
from mmlab.app import cli
from mmlab.live import LAB_LIMIT, LabSafetyError, LiveProcessDied, Machine, compare, probe, procfs, syscalls, timing

pytestmark = pytest.mark.live
THP = HPAGE_PMD_SIZE


@pytest.fixture
def machine():
    with Machine() as m:
        yield m


def test_mmap_is_2mib_aligned_and_a_touch_faults_in_pmd_mapped_thps(machine):
    p = machine.spawn()
    a = p.mmap(2 * THP)
    assert a % THP == 0
    p.madvise(a, 2 * THP, MADV_HUGEPAGE)
    before = machine.vmstat["thp_fault_alloc"]
    p.write(a, 2 * THP, 9)
    assert machine.vmstat["thp_fault_alloc"] - before >= 2
    assert p.thp_map(a, 2 * THP) == "HH"
    assert p.smaps().range(a, 2 * THP)["AnonHugePages"] == 4096
    pages = p.pagemap(a, THP)
    assert len(pages) == 512 and all(pg.pmd_mapped and pg.thp and pg.swapbacked for pg in pages)
    assert p.read(a + THP + 5) == 9


def test_smaps_shows_only_the_labs_own_mappings(machine):
    p = machine.spawn()
    assert p.smaps().vmas == []
    a = p.mmap(THP)
    assert [(v.start, v.end) for v in p.smaps().vmas] == [(a, a + THP)]


def test_syscall_errors_come_back_as_oserror_with_the_kernels_errno(machine):
    p = machine.spawn()
    a = p.mmap(THP)
    p.write(a, THP)
    p.mlock(a, THP)
    for advice in (MADV_FREE, MADV_PAGEOUT):
        with pytest.raises(OSError) as e:
            p.madvise(a, THP, advice)
        assert e.value.errno == errno.EINVAL
    with pytest.raises(OSError) as e:
        p.madvise(a + 1, PAGE_SIZE, MADV_FREE)  # unaligned start
    assert e.value.errno == errno.EINVAL


def test_bad_loads_and_stores_are_segmentation_faults_not_crashes(machine):
    p = machine.spawn()
    a = p.mmap(2 * THP)
    p.mprotect(a, THP, PROT_READ)
    with pytest.raises(SegmentationFault):
        p.write(a, PAGE_SIZE, 1)
    p.munmap(a + THP, THP)
    with pytest.raises(SegmentationFault):
        p.read(a + THP)
    assert p.read(a) == 0  # the process is still there


def test_memory_the_lab_did_not_map_is_refused(machine):
    p = machine.spawn()
    a = p.mmap(THP)
    with pytest.raises(LabSafetyError, match="only touches its own mappings"):
        p.madvise(a - PAGE_SIZE, 2 * PAGE_SIZE, MADV_FREE)  # reaches the guard page below
    with pytest.raises(LabSafetyError):
        p.munmap(a - PAGE_SIZE, PAGE_SIZE)


def test_at_most_1_gib_is_mapped_at_a_time_across_processes(machine):
    p, q = machine.spawn(), machine.spawn()
    with pytest.raises(LabSafetyError, match="limit"):
        p.mmap(LAB_LIMIT + THP)
    p.mmap(LAB_LIMIT // 2)
    q.mmap(LAB_LIMIT // 2)  # untouched, so nothing is actually allocated
    assert machine.mapped == LAB_LIMIT
    with pytest.raises(LabSafetyError):
        q.mmap(THP)
    with pytest.raises(LabSafetyError, match="fork"):
        p.fork()
    q.exit()
    assert machine.mapped == LAB_LIMIT // 2


def test_a_crash_ends_only_that_process(machine):
    p = machine.spawn()
    p.mmap(THP)
    os.kill(p.pid, signal.SIGKILL)
    with pytest.raises(LiveProcessDied, match="notebook is unharmed"):
        p.read(0)
    assert machine.mapped == 0
    q = machine.spawn()
    assert q.read(q.mmap(THP)) == 0


def test_fork_shares_the_thps_and_exit_waits_for_the_teardown(machine):
    p = machine.spawn()
    a = p.mmap(THP)
    p.madvise(a, THP, MADV_HUGEPAGE)
    p.write(a, THP, 4)
    child = p.fork()
    assert child.read(a) == 4
    assert {pg.mapcount for pg in p.pagemap(a, THP)} == {2}
    child.exit()
    assert {pg.mapcount for pg in p.pagemap(a, THP)} == {1}
    with pytest.raises(ProcessLookupError):
        child.read(a)


def test_a_pin_holds_a_lazyfree_thp_until_released(machine):
    p = machine.spawn()
    a = p.mmap(THP)
    p.madvise(a, THP, MADV_HUGEPAGE)
    p.write(a, THP, 5)
    pin = p.pin(a)
    p.madvise(a, THP, MADV_FREE)
    p.madvise(a, THP, MADV_PAGEOUT)
    assert p.read(a) == 5  # kept: reclaim saw the extra reference
    pin.release()
    pin.release()  # releasing twice is harmless
    p.madvise(a, THP, MADV_PAGEOUT)
    assert p.read(a) == 0


def test_without_root_pfns_flags_and_mapcounts_are_none_never_guessed():
    buf = mmap.mmap(-1, 4 * PAGE_SIZE)  # this test's own memory
    buf[:] = b"x" * len(buf)
    addr = ctypes.addressof(ctypes.c_char.from_buffer(buf))
    smaps = procfs.parse_smaps(open("/proc/self/smaps").read())
    pages = procfs.read_pages(addr, 4 * PAGE_SIZE, smaps, root=False)
    assert all(pg.present for pg in pages)
    assert all(pg.pfn is None and pg.dirty is None and pg.thp is None and pg.mapcount is None for pg in pages)
    assert all(pg.pmd_mapped is False for pg in pages)  # PAGEMAP_SCAN needs no root


def test_without_pagemap_scan_pmd_mappings_are_inferred_from_smaps_where_unambiguous(monkeypatch):
    """As on kernels before 6.7: THP 0 split by an mprotect of its first MiB, THP 1 whole."""
    monkeypatch.setattr(procfs, "pagemap_scan", lambda start, length: None)
    base = syscalls.mmap(None, 3 * THP, PROT_READ | PROT_WRITE, syscalls.MAP_PRIVATE | syscalls.MAP_ANONYMOUS)
    try:
        a = -(-base // THP) * THP  # this test's own memory, 2 MiB aligned
        syscalls.madvise(a, 2 * THP, MADV_HUGEPAGE)
        syscalls.memset(a, 1, 2 * THP)
        syscalls.mprotect(a, THP // 2, PROT_READ)
        smaps = procfs.parse_smaps(open("/proc/self/smaps").read(), keep=[(a, a + 2 * THP)])
        pages = procfs.read_pages(a, 2 * THP, smaps, root=True)
        assert proc.thp_map(pages, a, 2 * THP) == "TH"
        syscalls.madvise(a + THP, THP, MADV_PAGEOUT)  # THP 1 split (no swap): present throughout, PTE-mapped
        smaps = procfs.parse_smaps(open("/proc/self/smaps").read(), keep=[(a, a + 2 * THP)])
        assert proc.thp_map(procfs.read_pages(a, 2 * THP, smaps, root=True), a, 2 * THP) in ("TT", "Ts")
    finally:
        syscalls.munmap(base, 3 * THP)


def test_this_machine_has_everything_the_lab_uses():
    assert probe().problems() == []


def test_the_live_command_prints_json_with_comparison_fingerprint_and_timing(capsys):
    argv = ["live", "--scenario", "lazyfree-reclaim", "--runs", "2", "--timing-mib", "4", "--timing-repeats", "1"]
    status = cli.main([*argv, "--json"])
    document = json.loads(capsys.readouterr().out)
    assert status == 0
    assert document["environment"]["release"] == os.uname().release
    rows = document["scenarios"]["lazyfree-reclaim"]["rows"]
    assert {r["verdict"] for r in rows} <= {"agree", "shown"}
    assert document["fingerprint"]["profiles"] == ["6.18.44"]
    assert [t["case"] for t in document["timing"]] == [c.name for c in timing.CASES]


def test_side_by_side_compares_a_scenario_on_the_model_and_the_host():
    rows = compare.side_by_side("lazyfree-small", profile="6.11", runs=1)
    assert {r.label for r in rows} >= {"touch", "MADV_FREE", "MADV_PAGEOUT", "read"}
    freed = next(r for r in rows if r.label == "MADV_PAGEOUT" and r.path == "vmstat.pglazyfreed")
    assert (freed.left, freed.right, freed.verdict) == (1024, 1024, compare.AGREE)


def test_timing_measures_every_case_on_a_tiny_size(machine):
    timings = timing.measure(machine, size=4 * MiB, repeats=1)
    assert [t.case for t in timings] == [c.name for c in timing.CASES]
    assert all(len(t.seconds) == len(t.cpu_seconds) == 1 and t.seconds[0] > 0 for t in timings)
    assert all(t.complete for t in timings)
    assert timings[0].counters[0]["pglazyfreed"] >= 1024
    assert machine.mapped == 0
