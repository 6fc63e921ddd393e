"""How long the model takes to reclaim N GiB of lazyfree THPs, under each kernel profile.

The series' own measurement (commit 735ecdfaf4e8): reclaiming 1 GiB of lazyfree THPs took
0.683 s before it and 0.049 s after, on an Intel i5. This is the model's version: map N GiB
with MADV_HUGEPAGE, write it (N * 512 THPs), MADV_FREE it, then time the MADV_PAGEOUT that
frees it. Pre-6.11 profiles split every PMD and discard 512 PTEs one by one, as the kernel
did; 6.11+ discard at PMD level; 6.15+ batch the PTEs. The goal: a default Machine, its
trace on, reclaims 1 GiB in at most a second under every profile, with the cost linear in
the size up to 16 GiB. The 6.10 profile is the hard case: it records an event, with a
snapshot of the folio, for every one of the 262144 PTEs of a GiB.

    .venv/bin/python benchmarks/reclaim_lazyfree.py              # 1 to 16 GiB, every profile
    .venv/bin/python benchmarks/reclaim_lazyfree.py --sizes 1 2 --kernels 6.10 6.11 --no-trace

Seconds are wall-clock and CPU time of the MADV_PAGEOUT call (the best of --repeat runs),
and "events" the trace events it recorded. With --memory, memory is measured in a separate
run under tracemalloc (which slows Python down): what the model holds once the region is
written and MADV_FREE'd, and its peak during the reclaim, trace included.
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
import tracemalloc
from dataclasses import dataclass

from mmlab import MADV_FREE, MADV_HUGEPAGE, MADV_PAGEOUT, PAGE_SIZE, PROFILES, GiB, Machine

GOAL_SECONDS_PER_GIB = 1.0
LINEAR_TOLERANCE = 0.35  # per-GiB cost may vary this much (relative) across sizes and still be "linear"


@dataclass
class Result:
    kernel: str
    gib: int
    wall: float
    cpu: float
    events: int = 0
    model_mib: float | None = None
    peak_mib: float | None = None


def lazyfree_region(kernel: str, size: int, trace: bool):
    """A process with ``size`` bytes of written, then MADV_FREE'd, THPs (trace cleared)."""
    machine = Machine(kernel=kernel, trace=trace)
    process = machine.spawn()
    addr = process.mmap(size)
    process.madvise(addr, size, MADV_HUGEPAGE)
    process.write(addr, size, 0x5A)
    process.madvise(addr, size, MADV_FREE)
    machine.clear_trace()
    return machine, process, addr


def reclaim(machine, process, addr: int, size: int) -> None:
    before = machine.vmstat["pglazyfreed"]
    process.madvise(addr, size, MADV_PAGEOUT)
    freed = machine.vmstat["pglazyfreed"] - before
    if freed != size // PAGE_SIZE or process.smaps()["Rss"]:
        sys.exit(f"{machine.kernel.name}: MADV_PAGEOUT freed {freed} pages of {size // PAGE_SIZE}")


def timed(kernel: str, gib: int, repeat: int, trace: bool) -> Result:
    best = None
    for _ in range(repeat):
        machine, process, addr = lazyfree_region(kernel, gib * GiB, trace)
        gc.collect()
        wall, cpu = time.perf_counter(), time.process_time()
        reclaim(machine, process, addr, gib * GiB)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        if best is None or cpu < best.cpu:
            best = Result(kernel, gib, wall, cpu, len(machine.trace))
        del machine, process
    return best


def measure_memory(result: Result, trace: bool) -> None:
    gc.collect()
    tracemalloc.start()
    machine, process, addr = lazyfree_region(result.kernel, result.gib * GiB, trace)
    model, _ = tracemalloc.get_traced_memory()
    tracemalloc.reset_peak()
    reclaim(machine, process, addr, result.gib * GiB)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    result.model_mib, result.peak_mib = model / 2**20, peak / 2**20


def linearity(results: list[Result]) -> str:
    """'linear' if the CPU seconds per GiB stay within LINEAR_TOLERANCE of their mean."""
    if len(results) < 2:
        return "-"
    per_gib = [r.cpu / r.gib for r in results]
    mean = sum(per_gib) / len(per_gib)
    spread = max(abs(x - mean) for x in per_gib) / mean
    return f"{'linear' if spread <= LINEAR_TOLERANCE else 'NOT linear'} ({mean * 1000:.0f} ms/GiB, ±{spread:.0%})"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 2, 4, 8, 16], metavar="GIB")
    parser.add_argument("--kernels", nargs="+", default=list(PROFILES), choices=list(PROFILES), metavar="PROFILE")
    parser.add_argument("--repeat", type=int, default=2, help="timed runs per case; the best counts (default 2)")
    parser.add_argument("--no-trace", action="store_true", help="Machine(trace=False): the model alone")
    parser.add_argument("--memory", action="store_true", help="also measure memory (tracemalloc runs; slow)")
    args = parser.parse_args(argv)
    trace = not args.no_trace

    print(f"trace {'on' if trace else 'off'}")
    print(f"{'profile':8} {'GiB':>4} {'wall s':>8} {'cpu s':>8} {'events':>9} {'model MiB':>10} {'peak MiB':>9}")
    missed = []
    for kernel in args.kernels:
        results = []
        for gib in args.sizes:
            result = timed(kernel, gib, args.repeat, trace)
            if args.memory:
                measure_memory(result, trace)
            results.append(result)
            memory = (f"{result.model_mib:10.1f} {result.peak_mib:9.1f}" if result.model_mib is not None
                      else f"{'-':>10} {'-':>9}")
            print(f"{kernel:8} {gib:>4} {result.wall:8.3f} {result.cpu:8.3f} {result.events:>9} {memory}", flush=True)
            if result.cpu / gib > GOAL_SECONDS_PER_GIB:
                missed.append(f"{kernel} at {gib} GiB: {result.cpu / gib:.2f} s/GiB")
        print(f"{kernel:8} cost: {linearity(results)}", flush=True)
    print(f"goal, at most {GOAL_SECONDS_PER_GIB:.0f} s (CPU) per GiB under every profile, "
          f"trace {'on' if trace else 'off'}: "
          + ("met" if not missed else "MISSED: " + "; ".join(missed)))
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
