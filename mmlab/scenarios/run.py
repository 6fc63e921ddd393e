"""Running a scenario: a ``Run`` makes each call through ``run.step(label, call, *args)``
and records it as plain data (see mmlab.scenarios)."""

from __future__ import annotations

import errno
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from ..proc import VMSTAT_FIELDS, PageInfo
from ..uapi import (
    ADVICE_NAMES,
    MADV_HUGEPAGE,
    MADV_NOHUGEPAGE,
    MCL_CURRENT,
    MCL_FUTURE,
    MCL_ONFAULT,
    MLOCK_ONFAULT,
    MREMAP_FIXED,
    MREMAP_MAYMOVE,
    PROT_NONE,
    PROT_READ,
    PROT_WRITE,
    KiB,
    MiB,
    SegmentationFault,
)

PAGE_FLAGS = (
    "thp",
    "pmd_mapped",
    "zero_page",
    "dirty",
    "swapbacked",
    "mlocked",
    "unevictable",
    "lru",
    "active",
    "anon",
)


@dataclass(frozen=True)
class Scenario:
    name: str
    shows: str  # one sentence: what the scenario shows
    body: Callable[[Run], None]
    needs: tuple[str, ...] = ("thp",)  # mmlab.live.env.NEEDS the host must meet


def summarize_pages(pages: list[PageInfo]) -> dict:
    """Counts of present pages with each flag (None when any is unreadable), and the
    /proc/kpagecount values as {mapcount: pages}."""
    present = [p for p in pages if p.present]
    summary: dict = {"present": len(present)}
    for flag in PAGE_FLAGS:
        values = [getattr(p, flag) for p in present]
        summary[flag] = None if None in values else sum(values)
    counts = [p.mapcount for p in present]
    summary["mapcount"] = None if None in counts else {str(k): v for k, v in sorted(Counter(counts).items())}
    return summary


def _size(n: int) -> str:
    for unit, name in ((MiB, "MiB"), (KiB, "KiB")):
        if n >= unit and n % unit == 0:
            return f"{n // unit} {name}"
    return str(n)


_PROT_NAMES = {
    PROT_NONE: "PROT_NONE",
    PROT_READ: "PROT_READ",
    PROT_WRITE: "PROT_WRITE",
    PROT_READ | PROT_WRITE: "PROT_READ|PROT_WRITE",
}
_ARG_NAMES = {
    ("madvise", 2): ADVICE_NAMES,
    ("mprotect", 2): _PROT_NAMES,
    ("mmap", 1): _PROT_NAMES,
    ("mlock2", 2): {0: "0", MLOCK_ONFAULT: "MLOCK_ONFAULT"},
    ("mremap", 3): {0: "0", MREMAP_MAYMOVE: "MREMAP_MAYMOVE", MREMAP_FIXED: "MREMAP_FIXED",
                    MREMAP_MAYMOVE | MREMAP_FIXED: "MREMAP_MAYMOVE|MREMAP_FIXED"},
    ("mlockall", 0): {0: "0", MCL_CURRENT: "MCL_CURRENT", MCL_FUTURE: "MCL_FUTURE", MCL_ONFAULT: "MCL_ONFAULT",
                      MCL_CURRENT | MCL_ONFAULT: "MCL_CURRENT|MCL_ONFAULT",
                      MCL_FUTURE | MCL_ONFAULT: "MCL_FUTURE|MCL_ONFAULT"},
}
# Calls that act on the whole process. In the live lab that is the interpreter's own memory
# too (mlockall locks and populates all of it), so /proc/vmstat moves by thousands of pages
# the scenario did not cause: their deltas are recorded as unknown (None), never judged.
PROCESS_WIDE = {"mlockall", "munlockall"}


class Run:
    """Records one execution of a scenario on one machine (model or live)."""

    def __init__(self, machine):
        self.machine = machine
        self.steps: list[dict] = []
        self.views: dict[str, tuple] = {}  # name -> (process, start, length)
        self._regions: dict[int, tuple[str, int]] = {}  # start -> (name, length), to describe calls
        self._processes: list = []  # spawned or forked by this run, in order
        self._exited: list = []

    def spawn(self):
        process = self.machine.spawn()
        self._processes.append(process)
        return process

    def close(self) -> None:
        """End the processes the run started that are still running, children first."""
        for process in reversed(self._processes):
            if self._running(process):
                process.exit()
                self._exited.append(process)

    def touched(self, length: int, huge: bool = True) -> tuple:
        """How most scenarios begin: a new process, a region "a" of ``length`` bytes mapped
        (MADV_HUGEPAGE, or MADV_NOHUGEPAGE when not ``huge``), watched as "p", and written
        (value 1). Returns (process, address)."""
        process = self.spawn()
        start = self.region(process, length, huge=huge)
        self.step("touch", process.write, start, length, 1)
        return process, start

    def region(self, process, length: int, name: str = "a", huge: bool = True, watch: str | None = "p") -> int:
        """Map a region (and advise MADV_HUGEPAGE, or MADV_NOHUGEPAGE when not ``huge``);
        watch it under the view name ``watch``."""
        start = self.step(f"mmap {name}", process.mmap, length)
        self._regions[start] = (name, length)
        self.step("MADV_HUGEPAGE" if huge else "MADV_NOHUGEPAGE", process.madvise, start, length,
                  MADV_HUGEPAGE if huge else MADV_NOHUGEPAGE)  # fmt: skip
        if watch:
            self.watch(watch, process, start, length)
        return start

    def watch(self, name: str, process, start: int, length: int) -> None:
        self.views[name] = (process, start, length)

    def _describe(self, call, args) -> str:
        """The call as a learner would write it: addresses by region name, sizes in KiB or
        MiB, advice and flags by name."""

        def arg(i, x):
            names = _ARG_NAMES.get((call.__name__, i))
            if names is not None:
                return names.get(x, str(x))
            if call.__name__ == "write" and i == 2:
                return str(x)
            for start, (name, length) in self._regions.items():
                if start <= x <= start + length:
                    return name if x == start else f"{name}+{_size(x - start)}"
            return _size(x)

        return f"{call.__name__}({', '.join(arg(i, x) for i, x in enumerate(args))})"

    def step(self, label: str, call, *args):
        """Make one call, then record its outcome, the vmstat deltas over it, and every
        watched region. An OSError is recorded as its errno name and a SegmentationFault
        as "SIGSEGV", not raised."""
        before = dict(self.machine.vmstat)  # a copy: the model updates its dict in place
        try:
            result, outcome = call(*args), None
        except OSError as e:
            result, outcome = None, errno.errorcode.get(e.errno, str(e.errno))
        except SegmentationFault:
            result, outcome = None, "SIGSEGV"
        after = dict(self.machine.vmstat)
        if call.__name__ == "fork" and outcome is None:
            self._processes.append(result)
        if call.__name__ == "exit":
            self._exited.append(call.__self__)
        deltas = {}
        for name in VMSTAT_FIELDS:
            if call.__name__ in PROCESS_WIDE or before.get(name) is None or after.get(name) is None:
                deltas[name] = None
            elif after[name] != before[name]:
                deltas[name] = after[name] - before[name]
        self.steps.append(
            {
                "label": label,
                "call": self._describe(call, args),
                "outcome": outcome,
                "value": result if call.__name__ == "read" else None,
                "vmstat": deltas,
                "views": {name: self._observe(*view) for name, view in self.views.items() if self._running(view[0])},
            }
        )
        return result

    def _running(self, process) -> bool:
        return not any(process is gone for gone in self._exited)

    @staticmethod
    def _observe(process, start: int, length: int) -> dict:
        return {
            "smaps": process.smaps().range(start, length),
            "thp_map": process.thp_map(start, length),
            "pages": summarize_pages(process.pagemap(start, length)),
        }


