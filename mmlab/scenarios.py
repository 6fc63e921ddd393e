"""Named scenarios, written once against the facade, run on the model or the live kernel.

A scenario is a function of a ``Run``: it spawns processes, maps regions and makes calls,
each through ``run.step(label, call, *args)``. The run records every step as plain data:

    {"label": "MADV_PAGEOUT", "call": "madvise(a, 64 MiB, MADV_PAGEOUT)",
     "outcome": None or an errno name ("EINVAL"), "value": what the call returned (read),
     "vmstat": {counter: delta over the call},
     "views": {"p": {"smaps": {field: kB}, "thp_map": "HH..", "pages": {flag: pages}}}}

``views`` has one entry per watched region (a process and a range): its smaps totals over
the VMAs of the range, its thp_map and a summary of its page flags (``summarize_pages``).
Records are JSON-able, so they can be stored (tests/data/host-*/) and compared field by
field (mmlab.live.compare).

``record()`` runs a scenario one or more times and merges the runs: /proc/vmstat is
global, so on a live kernel other processes add noise that differs from run to run,
while what the scenario itself causes repeats.
"""

from __future__ import annotations

import errno
import statistics
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from .mm.memory import SegmentationFault
from .proc import VMSTAT_FIELDS, PageInfo
from .uapi import (
    ADVICE_NAMES,
    HPAGE_PMD_SIZE,
    MADV_COLD,
    MADV_COLLAPSE,
    MADV_DONTNEED,
    MADV_FREE,
    MADV_HUGEPAGE,
    MADV_NOHUGEPAGE,
    MADV_PAGEOUT,
    MCL_CURRENT,
    MCL_FUTURE,
    MCL_ONFAULT,
    MLOCK_ONFAULT,
    MREMAP_FIXED,
    MREMAP_MAYMOVE,
    PAGE_SIZE,
    PROT_NONE,
    PROT_READ,
    PROT_WRITE,
    KiB,
    MiB,
)

THP = HPAGE_PMD_SIZE
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

# How a field is judged when two records are compared (and when runs are merged):
#   exact    - the scenario alone decides it;
#   tolerant - the scenario drives it, but other processes move it by a few pages too;
#   shown    - global noise (every process moves it) or global state (the huge zero page
#              is allocated once per boot); recorded and shown, never judged.
TOLERANCE = 64  # pages, for tolerant counters
TOLERANT_VMSTAT = {
    "nr_mlock",
    "unevictable_pgs_mlocked",
    "unevictable_pgs_munlocked",
    "unevictable_pgs_culled",
    "unevictable_pgs_rescued",
    "unevictable_pgs_cleared",
    "unevictable_pgs_stranded",
}
SHOWN_VMSTAT = {"nr_anon_pages", "pgfault", "pgactivate", "pgdeactivate", "thp_zero_page_alloc"}
# smaps Referenced reflects accessed bits, which anything sampling them clears (DAMON,
# idle page tracking, kswapd); the scenario does not decide it.
SHOWN_SMAPS = {"Referenced"}


def judgement(path: str) -> str:
    """'exact', 'tolerant' or 'shown' for a flattened field path (see ``flatten``)."""
    parts = path.split(".")
    if parts[0] == "vmstat":
        if parts[1] in SHOWN_VMSTAT:
            return "shown"
        return "tolerant" if parts[1] in TOLERANT_VMSTAT else "exact"
    if len(parts) >= 3 and parts[1] == "smaps" and parts[2] in SHOWN_SMAPS:
        return "shown"
    return "exact"


@dataclass(frozen=True)
class Scenario:
    name: str
    shows: str  # one sentence: what the scenario shows
    body: Callable[[Run], None]
    needs: tuple[str, ...] = ("thp",)  # mmlab.live.env.NEEDS the host must meet


SCENARIOS: dict[str, Scenario] = {}


def scenario(name: str, shows: str, needs: tuple[str, ...] = ("thp",)):
    """Register the decorated function as a scenario."""

    def register(body: Callable[[Run], None]) -> Callable[[Run], None]:
        if name in SCENARIOS:
            raise ValueError(f"scenario {name!r} is defined twice")
        SCENARIOS[name] = Scenario(name, shows, body, needs)
        return body

    return register


def get(name: str) -> Scenario:
    try:
        return SCENARIOS[name]
    except KeyError:
        raise KeyError(f"no scenario {name!r}; known: {', '.join(SCENARIOS)}") from None


# -- recording ------------------------------------------------------------------------


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


def run_scenario(scenario: Scenario | str, machine) -> dict:
    """Run a scenario once on ``machine`` and return its record. The processes it started
    are ended afterwards, even if the scenario fails."""
    scenario = get(scenario) if isinstance(scenario, str) else scenario
    run = Run(machine)
    try:
        scenario.body(run)
    finally:
        run.close()
    return {
        "scenario": scenario.name,
        "shows": scenario.shows,
        "kernel": getattr(machine.kernel, "name", machine.kernel),
        "steps": run.steps,
    }


# -- merging runs ---------------------------------------------------------------------


def flatten(step: dict) -> dict[str, object]:
    """One step as {path: value}: "outcome", "value", "vmstat.<counter>",
    "<view>.smaps.<field>", "<view>.thp_map", "<view>.pages.<flag>",
    "<view>.pages.mapcount.<n>"."""
    flat: dict[str, object] = {"outcome": step["outcome"], "value": step["value"]}
    flat.update({f"vmstat.{k}": v for k, v in step["vmstat"].items()})
    for view, seen in step["views"].items():
        flat.update({f"{view}.smaps.{k}": v for k, v in seen["smaps"].items()})
        flat[f"{view}.thp_map"] = seen["thp_map"]
        for flag, value in seen["pages"].items():
            if flag == "mapcount" and value is not None:
                flat.update({f"{view}.pages.mapcount.{n}": pages for n, pages in value.items()})
            else:
                flat[f"{view}.pages.{flag}"] = value
    return flat


def lookup(flat: dict[str, object], path: str):
    """The value of ``path`` in a flattened step. Absent means: a counter that did not
    move, or no pages with that mapcount (unless the mapcounts were unreadable); anything
    else absent is unknown (None)."""
    if path in flat:
        return flat[path]
    if path.startswith("vmstat."):
        return 0
    if ".pages.mapcount." in path:
        whole = path.rsplit(".", 1)[0]
        return None if whole in flat and flat[whole] is None else 0
    return None


AGREE, DIFFER, UNAVAILABLE, SHOWN = "agree", "differ", "unavailable", "shown"


def verdict(path: str, a, b) -> str:
    """How two values of one field compare, as the field is judged (``judgement``).
    A value one side could not read (None; '?' in a thp_map) is "unavailable": neither
    agreement nor disagreement. An outcome or a read value of None is a real value."""
    kind = judgement(path)
    if kind == "shown":
        return SHOWN
    if path in ("outcome", "value"):
        return AGREE if a == b else DIFFER
    if a is None or b is None:
        return AGREE if a is b else UNAVAILABLE
    if path.endswith(".thp_map") and "?" in a + b:
        known_equal = len(a) == len(b) and all(x == y or "?" in (x, y) for x, y in zip(a, b, strict=True))
        return UNAVAILABLE if known_equal else DIFFER
    if kind == "tolerant":
        return AGREE if abs(a - b) <= TOLERANCE else DIFFER
    return AGREE if a == b else DIFFER


def step_verdicts(a: dict, b: dict):
    """(path, value in a, value in b, verdict) for every field of two steps."""
    fa, fb = flatten(a), flatten(b)
    for path in fa.keys() | fb.keys():
        va, vb = lookup(fa, path), lookup(fb, path)
        yield path, va, vb, verdict(path, va, vb)


def steps_agree(a: dict, b: dict) -> bool:
    """Whether two records of the same scenario agree on every judged field."""
    if len(a["steps"]) != len(b["steps"]):
        return False
    return not any(
        v == DIFFER for sa, sb in zip(a["steps"], b["steps"], strict=True) for *_, v in step_verdicts(sa, sb)
    )


def _consensus(values: list):
    """The value most runs saw; for numbers without a majority, the median."""
    value, votes = Counter(map(repr, values)).most_common(1)[0]
    if votes * 2 > len(values) or not all(isinstance(v, int) for v in values):
        return next(v for v in values if repr(v) == value)
    return int(statistics.median(values))


def _unsettled(path: str, values: list) -> bool:
    """Whether runs that saw ``values`` disagree beyond what the field's judgement allows."""
    kind = judgement(path)
    if kind == "shown" or len({repr(v) for v in values}) == 1:
        return False
    if kind == "tolerant" and None not in values:
        return max(values) - min(values) > TOLERANCE
    return True


def merge(records: list[dict]) -> dict:
    """Merge runs of one scenario: each field takes the value most runs saw. The merged
    record lists under "unsettled" the judged fields on which the runs differed."""
    merged = dict(records[0], runs=len(records), unsettled=[])
    steps = []
    for i, step in enumerate(records[0]["steps"]):
        flats = [flatten(r["steps"][i]) for r in records]
        new = {k: step[k] for k in ("label", "call")}
        new["outcome"] = _consensus([f["outcome"] for f in flats])
        new["value"] = _consensus([f["value"] for f in flats])
        new["vmstat"] = {}
        for name in sorted({k[7:] for f in flats for k in f if k.startswith("vmstat.")}):
            values = [f.get(f"vmstat.{name}", 0) for f in flats]
            value = values[0] if None in values else _consensus(values)
            if value != 0:
                new["vmstat"][name] = value
            if _unsettled(f"vmstat.{name}", values):
                merged["unsettled"].append(f"{step['label']}: vmstat.{name} {values}")
        new["views"] = {}
        for view in step["views"]:
            seen = [r["steps"][i]["views"].get(view) for r in records]
            new["views"][view] = _merge_view([s for s in seen if s is not None], step["label"], view, merged)
        steps.append(new)
    merged["steps"] = steps
    return merged


def _merge_view(seen: list[dict], label: str, view: str, merged: dict) -> dict:
    def pick(values, path):
        if _unsettled(path, values):
            merged["unsettled"].append(f"{label}: {path} {values}")
        return _consensus(values)

    return {
        "smaps": {k: pick([s["smaps"][k] for s in seen], f"{view}.smaps.{k}") for k in seen[0]["smaps"]},
        "thp_map": pick([s["thp_map"] for s in seen], f"{view}.thp_map"),
        "pages": {k: pick([s["pages"][k] for s in seen], f"{view}.pages.{k}") for k in seen[0]["pages"]},
    }


def record(scenario: Scenario | str, make_machine: Callable[[], object], runs: int = 1, max_runs: int = 5) -> dict:
    """Run a scenario ``runs`` times on fresh machines and merge the runs. With ``runs`` > 1,
    keep running (up to ``max_runs``) until the last run agrees on every judged field with
    an earlier one, so a run disturbed by other processes is outvoted."""
    records = [run_scenario(scenario, make_machine()) for _ in range(runs)]
    while runs > 1 and len(records) < max_runs and not any(steps_agree(records[-1], r) for r in records[:-1]):
        records.append(run_scenario(scenario, make_machine()))
    return merge(records)


# -- the scenarios --------------------------------------------------------------------
#
# Sizes are a few THPs, except where a scenario reproduces the 64 MiB (32 THP) runs of
# the host experiments (course/sources.ipynb, section 7). Views are named "p" (the first
# process) and "c" (a forked child).

BIG = 32 * THP  # 64 MiB


@scenario("thp-fault", "Touching a MADV_HUGEPAGE range faults in one PMD-mapped 2 MiB THP per slot.")
def thp_fault(run: Run):
    p = run.spawn()
    a = run.region(p, BIG)
    run.step("touch", p.write, a, BIG, 1)


@scenario(
    "lazyfree-reclaim",
    "MADV_FREE makes clean THPs lazyfree (no split); MADV_PAGEOUT then frees them without "
    "swap, and the memory reads back as zeros.",
    needs=("thp", "pageout"),
)
def lazyfree_reclaim(run: Run):
    p = run.spawn()
    a = run.region(p, BIG)
    run.step("touch", p.write, a, BIG, 1)
    run.step("MADV_FREE", p.madvise, a, BIG, MADV_FREE)
    run.step("MADV_PAGEOUT", p.madvise, a, BIG, MADV_PAGEOUT)
    run.step("read", p.read, a)


@scenario(
    "lazyfree-rewrite",
    "Writing a lazyfree THP again (no fault: the PMD just becomes dirty) makes reclaim keep "
    "it and turn it back into normal swap-backed memory.",
    needs=("thp", "pageout"),
)
def lazyfree_rewrite(run: Run):
    p = run.spawn()
    a = run.region(p, 2 * THP)
    run.step("touch", p.write, a, 2 * THP, 1)
    run.step("MADV_FREE", p.madvise, a, 2 * THP, MADV_FREE)
    run.step("rewrite", p.write, a, 2 * THP, 2)
    run.step("MADV_PAGEOUT", p.madvise, a, 2 * THP, MADV_PAGEOUT)
    run.step("read", p.read, a)


@scenario(
    "lazyfree-rewrite-twice",
    "With no swap, a second MADV_PAGEOUT of the re-dirtied (now swap-backed) THPs cannot "
    "swap them out and falls back to splitting the folios.",
    needs=("thp", "pageout", "no_swap"),
)
def lazyfree_rewrite_twice(run: Run):
    lazyfree_rewrite(run)
    p, a, _ = run.views["p"]
    run.step("MADV_PAGEOUT again", p.madvise, a, 2 * THP, MADV_PAGEOUT)
    run.step("read", p.read, a)


@scenario(
    "lazyfree-partial",
    "MADV_FREE of half a THP must split the folio (a folio is lazyfree as a whole); reclaim "
    "then frees only the lazyfree half.",
    needs=("thp", "pageout"),
)
def lazyfree_partial(run: Run):
    p = run.spawn()
    a = run.region(p, 2 * THP)
    run.step("touch", p.write, a, 2 * THP, 1)
    run.step("MADV_FREE first half of THP 0", p.madvise, a, THP // 2, MADV_FREE)
    run.step("MADV_PAGEOUT", p.madvise, a, 2 * THP, MADV_PAGEOUT)
    run.step("read freed half", p.read, a)
    run.step("read kept half", p.read, a + THP // 2)


@scenario(
    "lazyfree-small",
    "The same lazyfree reclaim with 4 KiB pages (MADV_NOHUGEPAGE): 512 small folios per 2 MiB, no THP counters move.",
    needs=("pageout",),
)
def lazyfree_small(run: Run):
    p = run.spawn()
    a = run.region(p, 2 * THP, huge=False)
    run.step("touch", p.write, a, 2 * THP, 1)
    run.step("MADV_FREE", p.madvise, a, 2 * THP, MADV_FREE)
    run.step("MADV_PAGEOUT", p.madvise, a, 2 * THP, MADV_PAGEOUT)
    run.step("read", p.read, a)


@scenario(
    "mlock-then-free",
    "An mlocked range refuses MADV_FREE and MADV_PAGEOUT with EINVAL: the THPs stay "
    "swap-backed, mlocked and unevictable.",
    needs=("thp", "pageout", "mlock"),
)
def mlock_then_free(run: Run):
    p = run.spawn()
    a = run.region(p, 2 * THP)
    run.step("touch", p.write, a, 2 * THP, 1)
    run.step("mlock", p.mlock, a, 2 * THP)
    run.step("MADV_FREE", p.madvise, a, 2 * THP, MADV_FREE)
    run.step("MADV_PAGEOUT", p.madvise, a, 2 * THP, MADV_PAGEOUT)
    run.step("munlock", p.munlock, a, 2 * THP)


@scenario(
    "free-then-mlock",
    "mlock() after MADV_FREE: the lazyfree THPs become mlocked and unevictable, and mlock's "
    "populate dirties the PMDs, so after munlock reclaim keeps the data.",
    needs=("thp", "pageout", "mlock"),
)
def free_then_mlock(run: Run):
    p = run.spawn()
    a = run.region(p, 2 * THP)
    run.step("touch", p.write, a, 2 * THP, 1)
    run.step("MADV_FREE", p.madvise, a, 2 * THP, MADV_FREE)
    run.step("mlock", p.mlock, a, 2 * THP)
    run.step("MADV_PAGEOUT", p.madvise, a, 2 * THP, MADV_PAGEOUT)
    run.step("munlock", p.munlock, a, 2 * THP)
    run.step("MADV_PAGEOUT after munlock", p.madvise, a, 2 * THP, MADV_PAGEOUT)
    run.step("read", p.read, a)


@scenario(
    "free-then-mlock-onfault",
    "mlock2(MLOCK_ONFAULT) after MADV_FREE locks without populating, so the PMDs stay clean: "
    "after munlock, reclaim discards the THPs.",
    needs=("thp", "pageout", "mlock"),
)
def free_then_mlock_onfault(run: Run):
    p = run.spawn()
    a = run.region(p, 2 * THP)
    run.step("touch", p.write, a, 2 * THP, 1)
    run.step("MADV_FREE", p.madvise, a, 2 * THP, MADV_FREE)
    run.step("mlock2 ONFAULT", p.mlock2, a, 2 * THP, MLOCK_ONFAULT)
    run.step("MADV_PAGEOUT", p.madvise, a, 2 * THP, MADV_PAGEOUT)
    run.step("munlock", p.munlock, a, 2 * THP)
    run.step("MADV_PAGEOUT after munlock", p.madvise, a, 2 * THP, MADV_PAGEOUT)
    run.step("read", p.read, a)


@scenario(
    "mlock-onfault",
    "MLOCK_ONFAULT locks nothing up front; each THP is mlocked as it is faulted in.",
    needs=("thp", "mlock"),
)
def mlock_onfault(run: Run):
    p = run.spawn()
    a = run.region(p, 2 * THP)
    run.step("mlock2 ONFAULT", p.mlock2, a, 2 * THP, MLOCK_ONFAULT)
    run.step("touch THP 0", p.write, a, THP, 1)
    run.step("munlock", p.munlock, a, 2 * THP)


@scenario(
    "locked-boundary",
    "mlock of half a THP splits the VMA and the PMD; the THP now crosses a VM_LOCKED "
    "boundary and is not mlocked, so reclaim of the unlocked half splits the folio.",
    needs=("thp", "pageout", "mlock"),
)
def locked_boundary(run: Run):
    p = run.spawn()
    a = run.region(p, 2 * THP)
    run.step("touch", p.write, a, 2 * THP, 1)
    run.step("mlock first half of THP 0", p.mlock, a, THP // 2)
    run.step("MADV_FREE unlocked part", p.madvise, a + THP // 2, THP + THP // 2, MADV_FREE)
    run.step("MADV_PAGEOUT unlocked part", p.madvise, a + THP // 2, THP + THP // 2, MADV_PAGEOUT)
    run.step("read locked half", p.read, a)
    run.step("munlock", p.munlock, a, THP // 2)


@scenario(
    "fork-shared",
    "After fork() parent and child map the same THPs (mapcount 2): MADV_FREE and "
    "MADV_PAGEOUT skip folios that may be shared, until the child exits.",
    needs=("thp", "pageout"),
)
def fork_shared(run: Run):
    p = run.spawn()
    a = run.region(p, 2 * THP)
    run.step("touch", p.write, a, 2 * THP, 1)
    c = run.step("fork", p.fork)
    run.watch("c", c, a, 2 * THP)
    run.step("MADV_FREE in parent", p.madvise, a, 2 * THP, MADV_FREE)
    run.step("MADV_PAGEOUT in parent", p.madvise, a, 2 * THP, MADV_PAGEOUT)
    run.step("child exits", c.exit)
    run.step("MADV_FREE in parent again", p.madvise, a, 2 * THP, MADV_FREE)
    run.step("MADV_PAGEOUT in parent again", p.madvise, a, 2 * THP, MADV_PAGEOUT)


@scenario(
    "fork-cow",
    "Writing one byte of a THP shared with a child: copy-on-write splits the parent's PMD "
    "and copies a single 4 KiB page, not the 2 MiB folio.",
)
def fork_cow(run: Run):
    p = run.spawn()
    a = run.region(p, 2 * THP)
    run.step("touch", p.write, a, 2 * THP, 1)
    c = run.step("fork", p.fork)
    run.watch("c", c, a, 2 * THP)
    run.step("parent writes one page", p.write, a, PAGE_SIZE, 3)
    run.step("child reads", c.read, a)
    run.step("child exits", c.exit)


@scenario(
    "dontneed-partial",
    "MADV_DONTNEED of half a THP splits the PMD, zaps half the PTEs and queues the folio for "
    "a deferred split; the rest stays mapped.",
)
def dontneed_partial(run: Run):
    p = run.spawn()
    a = run.region(p, 2 * THP)
    run.step("touch", p.write, a, 2 * THP, 1)
    run.step("MADV_DONTNEED first half of THP 0", p.madvise, a, THP // 2, MADV_DONTNEED)
    run.step("read zapped", p.read, a)
    run.step("read kept", p.read, a + THP // 2)


@scenario(
    "munmap-half",
    "munmap of half a THP splits the PMD, frees nothing yet and queues the folio for a deferred split.",
)
def munmap_half(run: Run):
    p = run.spawn()
    a = run.region(p, 2 * THP)
    run.step("touch", p.write, a, 2 * THP, 1)
    run.step("munmap second half of THP 0", p.munmap, a + THP // 2, THP // 2)


@scenario(
    "mprotect-part",
    "mprotect of part of a THP splits the VMA, so the PMD is split and the folio is mapped by PTEs in two VMAs.",
)
def mprotect_part(run: Run):
    p = run.spawn()
    a = run.region(p, 2 * THP)
    run.step("touch", p.write, a, 2 * THP, 1)
    run.step("mprotect first half of THP 0 read-only", p.mprotect, a, THP // 2, PROT_READ)
    run.step("write to it", p.write, a, PAGE_SIZE, 2)


@scenario(
    "plain-thp-reclaim",
    "MADV_PAGEOUT of ordinary (not lazyfree) THPs with no swap: swap allocation fails, the "
    "folios are split as a fallback and nothing is freed.",
    needs=("thp", "pageout", "no_swap"),
)
def plain_thp_reclaim(run: Run):
    p = run.spawn()
    a = run.region(p, 2 * THP)
    run.step("touch", p.write, a, 2 * THP, 1)
    run.step("MADV_PAGEOUT", p.madvise, a, 2 * THP, MADV_PAGEOUT)
    run.step("read", p.read, a)


@scenario(
    "huge-zero-page",
    "A read fault in an untouched THP range maps the shared huge zero page; the first write "
    "then faults in a fresh THP.",
    needs=("thp", "huge_zero_page"),
)
def huge_zero_page(run: Run):
    p = run.spawn()
    a = run.region(p, 2 * THP)
    run.step("read THP 0", p.read, a)
    run.step("write THP 0", p.write, a, PAGE_SIZE, 1)


@scenario(
    "madv-cold",
    "MADV_COLD clears the accessed bits of PMD-mapped THPs, and moves THPs that failed reclaim (and "
    "so were activated) back to the inactive list whole, without splitting them.",
    needs=("thp", "cold", "pageout"),
)
def madv_cold(run: Run):
    p = run.spawn()
    a = run.region(p, 2 * THP)
    run.step("touch", p.write, a, 2 * THP, 1)
    run.step("MADV_COLD", p.madvise, a, 2 * THP, MADV_COLD)
    run.step("MADV_FREE", p.madvise, a, 2 * THP, MADV_FREE)
    run.step("rewrite", p.write, a, 2 * THP, 2)
    run.step("MADV_PAGEOUT (kept, activated)", p.madvise, a, 2 * THP, MADV_PAGEOUT)
    run.step("MADV_COLD again", p.madvise, a, 2 * THP, MADV_COLD)


@scenario(
    "pinned-lazyfree",
    "A GUP pin (an extra reference) on a lazyfree THP makes reclaim give up on it; once "
    "released, the next MADV_PAGEOUT frees it.",
    needs=("thp", "pageout"),
)
def pinned_lazyfree(run: Run):
    p = run.spawn()
    a = run.region(p, 2 * THP)
    run.step("touch", p.write, a, 2 * THP, 1)
    pin = run.step("pin a page of THP 0", p.pin, a, PAGE_SIZE)
    run.step("MADV_FREE", p.madvise, a, 2 * THP, MADV_FREE)
    run.step("MADV_PAGEOUT", p.madvise, a, 2 * THP, MADV_PAGEOUT)
    run.step("read pinned THP", p.read, a)
    run.step("release the pin", pin.release)
    run.step("MADV_PAGEOUT again", p.madvise, a, 2 * THP, MADV_PAGEOUT)


@scenario(
    "byte-exact",
    "Writes and reads are byte-exact: four bytes written across the boundary of two THPs fault "
    "in both, and the bytes around them still read 0.",
)
def byte_exact(run: Run):
    p = run.spawn()
    a = run.region(p, 2 * THP)
    run.step("write 4 bytes across the THP boundary", p.write, a + THP - 2, 4, 5)
    run.step("read the byte before", p.read, a + THP - 3)
    run.step("read the first byte written", p.read, a + THP - 2)
    run.step("read the last byte written", p.read, a + THP + 1)
    run.step("read the byte after", p.read, a + THP + 2)
    run.step("write 3 bytes across a page boundary in THP 1", p.write, a + THP + PAGE_SIZE - 1, 3, 6)
    run.step("read across the page boundary", p.read, a + THP + PAGE_SIZE + 1)
    run.step("read the old byte there", p.read, a + THP + 1)


@scenario(
    "zero-subpages-on-split",
    "Splitting a THP's folio (partial MADV_COLD, MADV_PAGEOUT) maps the shared zero page for every "
    "subpage holding only zeros and frees it (since 6.12); splitting only the PMD (partial "
    "MADV_DONTNEED) keeps them.",
    needs=("thp", "cold", "pageout"),
)
def zero_subpages_on_split(run: Run):
    p = run.spawn()
    a = run.region(p, 3 * THP)
    run.step("write one byte in each THP", p.write, a + 100, 1, 7)
    run.step("write one byte in THP 1", p.write, a + THP + 100, 1, 7)
    run.step("write one byte in THP 2", p.write, a + 2 * THP + 100, 1, 7)
    run.step("MADV_DONTNEED second half of THP 0", p.madvise, a + THP // 2, THP // 2, MADV_DONTNEED)
    run.step("MADV_COLD first half of THP 1", p.madvise, a + THP, THP // 2, MADV_COLD)
    run.step("MADV_PAGEOUT first half of THP 2", p.madvise, a + 2 * THP, THP // 2, MADV_PAGEOUT)
    run.step("read the byte kept", p.read, a + THP + 100)
    run.step("read a zero page", p.read, a + THP + PAGE_SIZE)


@scenario(
    "cow-reuse",
    "After fork() the parent's write copies one 4 KiB page out of the shared THP; once the child "
    "has exited, a write to another page of it reuses the THP in place (since 6.15), no copy.",
)
def cow_reuse(run: Run):
    p = run.spawn()
    a = run.region(p, 2 * THP)
    run.step("touch", p.write, a, 2 * THP, 1)
    c = run.step("fork", p.fork)
    run.step("parent writes page 0", p.write, a, PAGE_SIZE, 2)
    run.step("child exits", c.exit)
    run.step("parent writes page 1", p.write, a + PAGE_SIZE, PAGE_SIZE, 3)
    run.step("parent writes THP 1", p.write, a + THP, PAGE_SIZE, 3)
    run.step("read page 1", p.read, a + PAGE_SIZE)


@scenario(
    "zap-keeps-folio-clean",
    "Zapping a dirty PTE of a lazyfree THP (MADV_DONTNEED of one page) does not dirty the folio: "
    "MADV_PAGEOUT then splits it and discards every remaining page.",
    needs=("thp", "pageout"),
)
def zap_keeps_folio_clean(run: Run):
    p = run.spawn()
    a = run.region(p, 2 * THP)
    run.step("touch THP 0", p.write, a, THP, 1)
    run.step("MADV_FREE THP 0", p.madvise, a, THP, MADV_FREE)
    run.step("mprotect page 0 read-only (splits the PMD)", p.mprotect, a, PAGE_SIZE, PROT_READ)
    run.step("write page 1 (dirty PTE)", p.write, a + PAGE_SIZE, PAGE_SIZE, 2)
    run.step("MADV_DONTNEED page 1", p.madvise, a + PAGE_SIZE, PAGE_SIZE, MADV_DONTNEED)
    run.step("MADV_PAGEOUT THP 0", p.madvise, a, THP, MADV_PAGEOUT)
    run.step("read page 2", p.read, a + 2 * PAGE_SIZE)


@scenario(
    "mremap-thp",
    "mremap() moves a THP whole (one PMD) to a 2 MiB aligned destination, but splits its PMD and "
    "moves 512 PTEs to an unaligned one; the errors are the kernel's.",
)
def mremap_thp(run: Run):
    p = run.spawn()
    a = run.region(p, 2 * THP)
    b = run.region(p, 4 * THP, name="b", watch="d")
    run.step("touch", p.write, a, 2 * THP, 1)
    run.step("mark a byte", p.write, a + 5, 1, 9)
    run.step("move THP 0 to b (aligned)", p.mremap, a, THP, THP, MREMAP_MAYMOVE | MREMAP_FIXED, b)
    run.step("read the byte moved", p.read, b + 5)
    run.step("move THP 1 to b+2 MiB+4 KiB (unaligned)", p.mremap, a + THP, THP, THP,
             MREMAP_MAYMOVE | MREMAP_FIXED, b + 2 * THP + PAGE_SIZE)  # fmt: skip
    run.step("read it there", p.read, b + 2 * THP + PAGE_SIZE)
    run.step("MREMAP_FIXED without MREMAP_MAYMOVE", p.mremap, b, PAGE_SIZE, PAGE_SIZE, MREMAP_FIXED, b + THP)
    run.step("overlapping move", p.mremap, b, THP, THP, MREMAP_MAYMOVE | MREMAP_FIXED, b + PAGE_SIZE)
    run.step("move from where nothing is mapped", p.mremap, a, THP, THP, MREMAP_MAYMOVE | MREMAP_FIXED, b + THP)
    run.step("shrink the moved THP to 1 MiB", p.mremap, b, THP, THP // 2, 0, 0)


@scenario(
    "madv-collapse",
    "MADV_COLLAPSE copies 4 KiB pages into a new THP now; it refuses a VM_NOHUGEPAGE range and an "
    "empty one (EINVAL), and one holding a pinned page (EAGAIN), after collapsing what it can.",
)
def madv_collapse(run: Run):
    p = run.spawn()
    a = run.region(p, 2 * THP, huge=False)
    run.step("touch (small pages)", p.write, a, 2 * THP, 1)
    run.step("MADV_COLLAPSE a VM_NOHUGEPAGE range", p.madvise, a, 2 * THP, MADV_COLLAPSE)
    run.step("MADV_HUGEPAGE", p.madvise, a, 2 * THP, MADV_HUGEPAGE)
    pin = run.step("pin a page of THP 1", p.pin, a + THP, PAGE_SIZE)
    run.step("MADV_COLLAPSE", p.madvise, a, 2 * THP, MADV_COLLAPSE)
    run.step("release the pin", pin.release)
    run.step("MADV_COLLAPSE again", p.madvise, a, 2 * THP, MADV_COLLAPSE)
    run.step("read", p.read, a + THP)
    run.step("MADV_DONTNEED THP 0", p.madvise, a, THP, MADV_DONTNEED)
    run.step("MADV_COLLAPSE the empty THP 0", p.madvise, a, THP, MADV_COLLAPSE)


@scenario(
    "mlockall",
    "mlockall(MCL_CURRENT) locks and populates every mapping (MCL_ONFAULT: only what is present); "
    "MCL_FUTURE makes the next mmap() locked and populated with 4 KiB pages.",
    needs=("thp", "mlock"),
)
def mlockall(run: Run):
    p = run.spawn()
    a = run.region(p, 2 * THP)
    run.step("touch THP 0", p.write, a, THP, 1)
    run.step("mlockall(MCL_ONFAULT) alone", p.mlockall, MCL_ONFAULT)
    run.step("mlockall(MCL_CURRENT)", p.mlockall, MCL_CURRENT)
    run.step("munlockall", p.munlockall)
    run.step("MADV_DONTNEED THP 1", p.madvise, a + THP, THP, MADV_DONTNEED)
    run.step("mlockall(MCL_CURRENT|MCL_ONFAULT)", p.mlockall, MCL_CURRENT | MCL_ONFAULT)
    run.step("touch THP 1", p.write, a + THP, PAGE_SIZE, 2)
    run.step("munlockall again", p.munlockall)
    run.step("mlockall(MCL_FUTURE)", p.mlockall, MCL_FUTURE)
    run.region(p, 2 * THP, name="b", watch="f")
    run.step("munlockall at last", p.munlockall)


@scenario(
    "pin-and-fork",
    "pin() (FOLL_WRITE) after fork() breaks copy-on-write first: the parent gets its own copy of the "
    "page; fork() after pin() copies every page of a pinned THP into the child at once.",
)
def pin_and_fork(run: Run):
    p = run.spawn()
    a = run.region(p, 2 * THP)
    run.step("touch", p.write, a, 2 * THP, 1)
    c = run.step("fork", p.fork)
    run.watch("c", c, a, 2 * THP)
    pin = run.step("parent pins a page of THP 0", p.pin, a, PAGE_SIZE)
    run.step("child exits", c.exit)
    d = run.step("fork again, with THP 0 pinned", p.fork)
    run.watch("c2", d, a, 2 * THP)
    run.step("release the pin", pin.release)
    run.step("second child exits", d.exit)
