"""Property-based tests: random system-call sequences over several processes, under every
kernel profile, never leave the model inconsistent (mmlab.debug.check_invariants after each
step) and never lose data that was not given up.

The test keeps its own account of what each process may read back, page by page, from the
system calls alone (no peeking at the model), byte by byte: a byte holds the value last
written there; it may also read back 0 once its page was MADV_FREE'd, until the next write
to it. MADV_DONTNEED makes it 0. A write that would fault anywhere stores nothing (the live
lab checks the whole range before its memset; the model does the same).
The same account predicts which calls fail and with which errno, following the kernel's
rules: madvise(2) handles the VMAs in address order and stops at a VM_LOCKED one with
EINVAL for MADV_FREE/DONTNEED/COLD/PAGEOUT (madvise_dontneed_free_valid_vma(),
can_madv_lru_vma() in mm/madvise.c); mlock(2) and mprotect(2) change the VMAs up to the
first hole, then fail with ENOMEM (apply_vma_lock_flags() in mm/mlock.c, do_mprotect_pkey()
in mm/mprotect.c); mlock() of a PROT_NONE range locks it but cannot fault it in: ENOMEM
(populate_vma_page_range() in mm/gup.c, __mlock_posix_error_return()).

Sizes stay small (regions of a few MiB) and the example count modest, so the file runs in
well under a minute; derandomize=True makes every run (and CI) try the same sequences.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass, replace

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from mmlab import (
    MADV_COLD,
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
    MLOCK_ONFAULT,
    PAGE_SIZE,
    PROFILES,
    PROT_NONE,
    PROT_READ,
    PROT_WRITE,
    Machine,
    MiB,
    SegmentationFault,
)
from mmlab.debug import ModelBug, check_invariants
from mmlab.include.page_flags import PG

KiB = 1024
# Repeats weight the draw towards whole, aligned THPs, where the series' code paths are.
REGION_SIZES = (3 * PAGE_SIZE, 1 * MiB, 2 * MiB, 2 * MiB, 4 * MiB, 4 * MiB)
# Offsets and lengths that land on and around 2 MiB (THP) and 1 MiB boundaries.
OFFSETS = (0, 0, 0, PAGE_SIZE, 1 * MiB, 2 * MiB - PAGE_SIZE, 2 * MiB, 2 * MiB, 2 * MiB + PAGE_SIZE, 3 * MiB)
# Writes and reads also land off page boundaries: they are byte-exact, across pages and THPs.
BYTE_OFFSETS = OFFSETS + (100, PAGE_SIZE - 3, 2 * MiB - 2)
LENGTHS = (1, 7, PAGE_SIZE, PAGE_SIZE + 5, 2 * PAGE_SIZE, 1 * MiB, 2 * MiB - PAGE_SIZE, 2 * MiB, 2 * MiB,
           2 * MiB + PAGE_SIZE, 4 * MiB, 4 * MiB)
VALUES = (1, 2, 0x5A, 0xFF)
ADVICE = (MADV_FREE, MADV_FREE, MADV_DONTNEED, MADV_COLD, MADV_PAGEOUT, MADV_PAGEOUT,
          MADV_HUGEPAGE, MADV_NOHUGEPAGE, MADV_NORMAL)
REFUSED_WHEN_LOCKED = {MADV_FREE, MADV_DONTNEED, MADV_COLD, MADV_PAGEOUT}
MAX_PROCESSES = 4


@dataclass(frozen=True)
class Page:
    """What the test knows about one mapped page of one process."""

    runs: tuple  # ((first byte, what a read there may return), ...), from byte 0 up
    prot: int
    locked: bool = False

    def values(self, offset: int) -> frozenset:
        return next(values for start, values in reversed(self.runs) if start <= offset)

    def store(self, lo: int, hi: int, value: int) -> Page:
        """The page after bytes [lo, hi) were written with ``value``."""
        runs = [r for r in self.runs if r[0] < lo] + [(lo, frozenset({value}))]
        if hi < PAGE_SIZE:
            runs.append((hi, self.values(hi)))
        runs += [r for r in self.runs if r[0] > hi]
        return replace(self, runs=tuple(runs))

    def freed(self) -> Page:
        return replace(self, runs=tuple((start, values | {0}) for start, values in self.runs))


ZEROS = ((0, frozenset({0})),)


@dataclass
class Tracked:
    """A process and the test's account of it."""

    process: object
    pages: dict  # page address -> Page
    regions: list  # (start, length) of every mmap, unmapped since or not: targets for calls
    future_locked: bool = False  # after mlockall(MCL_FUTURE): new mappings start locked


def page_range(addr: int, length: int) -> range:
    start = addr - addr % PAGE_SIZE
    end = -(-(addr + length) // PAGE_SIZE) * PAGE_SIZE
    return range(start, end, PAGE_SIZE)


class MemoryMachine(RuleBasedStateMachine):
    """One Machine, up to MAX_PROCESSES processes, random system calls."""

    def __init__(self):
        super().__init__()
        self.machine = None
        self.procs: list[Tracked] = []
        self.pins: list = []

    @initialize(kernel=st.sampled_from(sorted(PROFILES)), thp=st.sampled_from(("madvise", "always")),
                use_zero_page=st.booleans())
    def boot(self, kernel, thp, use_zero_page):
        """The course's starting point: one process, 4 MiB of MADV_HUGEPAGE memory written (2 THPs)."""
        self.machine = Machine(kernel=kernel, thp=thp, use_zero_page=use_zero_page, trace=False)
        t = Tracked(self.machine.spawn(), {}, [])
        self.procs.append(t)
        self._mmap(t, 4 * MiB, hugepage=True, fill=0x11)

    # ------------------------------------------------------------ choosing targets

    def _draw_process(self, data, label: str) -> Tracked:
        return self.procs[data.draw(st.integers(0, len(self.procs) - 1), label=f"{label} (index)")]

    def _target(self, data, offsets=OFFSETS) -> tuple[Tracked, int, int]:
        """A process and a range near one of its regions (possibly past its end, or unmapped)."""
        t = self._draw_process(data, "process")
        start, _ = data.draw(st.sampled_from(t.regions), label="region")
        return t, start + data.draw(st.sampled_from(offsets), label="offset"), data.draw(
            st.sampled_from(LENGTHS), label="length")

    def _expect(self, outcome, call, *args):
        """Run ``call``; check it raised the errno (or exception type) ``outcome``, or nothing."""
        try:
            result = call(*args)
        except OSError as err:
            assert outcome == err.errno, f"{call.__name__}{args}: errno {errno.errorcode[err.errno]}, " \
                                         f"expected {outcome and errno.errorcode.get(outcome, outcome)}"
            return None
        except SegmentationFault:
            assert outcome is SegmentationFault, f"{call.__name__}{args}: SIGSEGV, expected {outcome}"
            return None
        assert outcome is None, f"{call.__name__}{args} succeeded, expected {outcome}"
        return result

    # ------------------------------------------------------------ rules

    @rule(data=st.data(), size=st.sampled_from(REGION_SIZES), hugepage=st.sampled_from((True, True, False)),
          fill=st.sampled_from((None, None, 0x11)))
    def mmap(self, data, size, hugepage, fill):
        """A new region, often MADV_HUGEPAGE and written all over at once (THPs, the course's setup)."""
        self._mmap(self._draw_process(data, "process"), size, hugepage, fill)

    def _mmap(self, t: Tracked, size: int, hugepage: bool, fill: int | None) -> None:
        addr = t.process.mmap(size)
        t.regions.append((addr, size))
        for a in page_range(addr, size):
            t.pages[a] = Page(ZEROS, PROT_READ | PROT_WRITE, locked=t.future_locked)
        if hugepage:
            t.process.madvise(addr, size, MADV_HUGEPAGE)
        if fill is not None:
            self._write(t, addr, size, fill)

    @rule(data=st.data(), value=st.sampled_from(VALUES))
    def write(self, data, value):
        self._write(*self._target(data, BYTE_OFFSETS), value)

    def _write(self, t: Tracked, addr: int, length: int, value: int) -> None:
        pages = page_range(addr, length)
        if any(a not in t.pages or not t.pages[a].prot & PROT_WRITE for a in pages):
            self._expect(SegmentationFault, t.process.write, addr, length, value)
            return
        for a in pages:
            t.pages[a] = t.pages[a].store(max(addr, a) - a, min(addr + length, a + PAGE_SIZE) - a, value)
        self._expect(None, t.process.write, addr, length, value)

    @rule(data=st.data())
    def read(self, data):
        t, addr, _ = self._target(data, BYTE_OFFSETS)
        page = t.pages.get(addr - addr % PAGE_SIZE)
        readable = page is not None and page.prot & PROT_READ
        value = self._expect(None if readable else SegmentationFault, t.process.read, addr)
        if readable:
            allowed = page.values(addr % PAGE_SIZE)
            assert value in allowed, f"read {addr:#x}: {value}, expected one of {set(allowed)}"

    @rule(data=st.data(), advice=st.sampled_from(ADVICE))
    def madvise(self, data, advice):
        self._madvise(*self._target(data), advice)

    @rule(data=st.data(), rewrite=st.booleans())
    def free_then_pageout(self, data, rewrite):
        """The course's story on a whole region: MADV_FREE, maybe a write, MADV_PAGEOUT."""
        t = self._draw_process(data, "process")
        start, size = data.draw(st.sampled_from(t.regions), label="region")
        self._madvise(t, start, size, MADV_FREE)
        if rewrite:
            self._write(t, start, PAGE_SIZE, 0x77)
        self._madvise(t, start, size, MADV_PAGEOUT)

    def _madvise(self, t: Tracked, addr: int, length: int, advice: int) -> None:
        outcome = None
        pages = page_range(addr, length)
        if any(a not in t.pages for a in pages):
            outcome = errno.ENOMEM
        for a in pages:
            page = t.pages.get(a)
            if page is None:
                continue
            if page.locked and advice in REFUSED_WHEN_LOCKED:
                outcome = errno.EINVAL
                break
            if advice == MADV_FREE:
                t.pages[a] = page.freed()
            elif advice == MADV_DONTNEED:
                t.pages[a] = replace(page, runs=ZEROS)
        self._expect(outcome, t.process.madvise, addr, length, advice)

    def _vma_walk(self, t: Tracked, addr: int, length: int, change) -> int | None:
        """Apply ``change`` to each page from ``addr`` up to the first hole: the errno, or None."""
        for a in page_range(addr, length):
            if a not in t.pages:
                return errno.ENOMEM
            t.pages[a] = change(t.pages[a])
        return None

    @rule(data=st.data(), onfault=st.booleans())
    def mlock(self, data, onfault):
        t, addr, length = self._target(data)
        outcome = self._vma_walk(t, addr, length, lambda p: replace(p, locked=True))
        if outcome is None and not onfault and any(t.pages[a].prot == PROT_NONE for a in page_range(addr, length)):
            outcome = errno.ENOMEM
        self._expect(outcome, t.process.mlock2, addr, length, MLOCK_ONFAULT if onfault else 0)

    @rule(data=st.data())
    def munlock(self, data):
        t, addr, length = self._target(data)
        outcome = self._vma_walk(t, addr, length, lambda p: replace(p, locked=False))
        self._expect(outcome, t.process.munlock, addr, length)

    @rule(data=st.data(), flags=st.sampled_from((MCL_CURRENT, MCL_FUTURE, MCL_CURRENT | MCL_FUTURE,
                                                 MCL_CURRENT | MCL_ONFAULT, MCL_FUTURE | MCL_ONFAULT, MCL_ONFAULT)))
    def mlockall(self, data, flags):
        """mlockall(): MCL_CURRENT locks every page now, MCL_FUTURE every later mapping;
        MCL_ONFAULT alone is EINVAL. Never an error for PROT_NONE (mm_populate() ignores it)."""
        t = self._draw_process(data, "process")
        if flags == MCL_ONFAULT:
            self._expect(errno.EINVAL, t.process.mlockall, flags)
            return
        if flags & MCL_CURRENT:
            t.pages = {a: replace(p, locked=True) for a, p in t.pages.items()}
        t.future_locked = bool(flags & MCL_FUTURE)
        self._expect(None, t.process.mlockall, flags)

    @rule(data=st.data())
    def munlockall(self, data):
        t = self._draw_process(data, "process")
        t.pages = {a: replace(p, locked=False) for a, p in t.pages.items()}
        t.future_locked = False
        self._expect(None, t.process.munlockall)

    @rule(data=st.data())
    def collapse(self, data):
        """MADV_COLLAPSE copies pages into THPs: what each page reads stays the same. Whether
        it succeeds depends on the layout (EINVAL, EAGAIN: tests/test_model_calls.py); an
        unmapped part is ENOMEM as for any madvise, once no VMA refused first."""
        t, addr, length = self._target(data)
        try:
            t.process.madvise(addr, length, MADV_COLLAPSE)
        except OSError as err:
            assert err.errno in (errno.EINVAL, errno.EAGAIN, errno.ENOMEM), err

    @rule(data=st.data(), prot=st.sampled_from((PROT_NONE, PROT_READ, PROT_READ | PROT_WRITE)))
    def mprotect(self, data, prot):
        t, addr, length = self._target(data)
        outcome = self._vma_walk(t, addr, length, lambda p: replace(p, prot=prot))
        self._expect(outcome, t.process.mprotect, addr, length, prot)

    @rule(data=st.data())
    def munmap(self, data):
        t, addr, length = self._target(data)
        for a in page_range(addr, length):
            t.pages.pop(a, None)
        t.process.munmap(addr, length)

    @rule(data=st.data())
    def pin(self, data):
        t, addr, length = self._target(data)
        pages = page_range(addr, min(length, 2 * PAGE_SIZE))
        if all(a in t.pages and t.pages[a].prot & PROT_WRITE for a in pages):
            self.pins.append(t.process.pin(addr, len(pages) * PAGE_SIZE))

    @precondition(lambda self: self.pins)
    @rule(data=st.data())
    def release(self, data):
        pin = data.draw(st.sampled_from(self.pins), label="pin")
        self.pins.remove(pin)
        pin.release()

    @precondition(lambda self: len(self.procs) < MAX_PROCESSES)
    @rule(data=st.data())
    def fork(self, data):
        t = self._draw_process(data, "parent")
        child = t.process.fork()
        pages = {a: replace(p, locked=False) for a, p in t.pages.items()}  # VM_LOCKED is not inherited
        self.procs.append(Tracked(child, pages, list(t.regions)))

    @precondition(lambda self: len(self.procs) > 1)
    @rule(data=st.data())
    def exit(self, data):
        t = self._draw_process(data, "exiting")
        self.procs.remove(t)
        t.process.exit()

    @rule()
    def reclaim(self):
        self.machine.reclaim()

    # ------------------------------------------------------------ checks

    @invariant()
    def consistent(self):
        if self.machine is not None:
            check_invariants(self.machine)

    def teardown(self):
        """Every page of every process reads back what the account allows."""
        for t in self.procs:
            for a, page in t.pages.items():
                if page.prot & PROT_READ:
                    for start, allowed in page.runs:
                        value = t.process.read(a + start)
                        assert value in allowed, f"pid {t.process.pid} {a + start:#x}: {value}, expected {set(allowed)}"
        if self.machine is not None:
            check_invariants(self.machine)


MemoryMachine.TestCase.settings = settings(
    max_examples=60,
    stateful_step_count=25,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
test_random_syscalls_keep_the_model_consistent = MemoryMachine.TestCase


def _corrupt_refcount(m, folio):
    folio._refcount += 1


def _corrupt_mapcount(m, folio):
    folio._mapcount[3] += 1


def _corrupt_lru_flag(m, folio):
    folio.flags ^= PG.active


def _corrupt_rss(m, folio):
    m.processes[0].mm.MM_ANONPAGES -= 1


def _corrupt_vmstat(m, folio):
    m.vmstat["nr_anon_transparent_hugepages"] += 1


def _free_behind_the_page_tables(m, folio):
    del m.folios[folio.pfn]


@pytest.mark.parametrize(("corrupt", "complaint"), [
    (_corrupt_refcount, "refcount"),
    (_corrupt_mapcount, "page 3 has _mapcount"),
    (_corrupt_lru_flag, "its flags say"),
    (_corrupt_rss, "MM_ANONPAGES"),
    (_corrupt_vmstat, "nr_anon_transparent_hugepages"),
    (_free_behind_the_page_tables, "use after free"),
])
def test_the_checker_reports_each_kind_of_damage(corrupt, complaint):
    """The checker is not vacuous: each kind of inconsistency it looks for is reported."""
    m = Machine(trace=False)
    p = m.spawn()
    a = p.mmap(2 * MiB)
    p.madvise(a, 2 * MiB, MADV_HUGEPAGE)
    p.write(a, 2 * MiB, 1)
    p.mprotect(a, 1 * MiB, PROT_READ)  # PTE-map the THP, so per-page mapcounts exist
    check_invariants(m)
    (folio,) = m.folios.values()
    corrupt(m, folio)
    with pytest.raises(ModelBug, match=complaint):
        check_invariants(m)
