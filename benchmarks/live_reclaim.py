"""Reclaim timing on this machine's kernel: lazyfree memory as THPs and as 4 KiB folios,
with MADV_DONTNEED as the baseline, beside the series' own table.

    .venv/bin/python benchmarks/live_reclaim.py [--mib 1024] [--repeats 5] [--rounds 3]

Each round times every case ``--repeats`` times and reports medians of wall-clock and CPU
time; several rounds show whether the 4 KiB : THP ratio is reproducible. The wall clock
drifts with the machine's load; the CPU-time ratio should not. Needs Linux with THP and
MADV_PAGEOUT; maps at most 1 GiB.
"""

import argparse
import statistics
import sys

from mmlab.live import Machine, probe, timing
from mmlab.uapi import MiB


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=1024, help="size reclaimed per run, MiB (at most 1024)")
    parser.add_argument("--repeats", type=int, default=5, help="runs per case and round (median reported)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds, to see the ratio's spread")
    args = parser.parse_args()
    env = probe()
    for need in ("linux", "thp", "pageout"):
        if env.lacking(need):
            print(f"live_reclaim: {env.lacking(need)}", file=sys.stderr)
            return 1
    if not 1 <= args.mib <= 1024:
        print("live_reclaim: --mib must be between 1 and 1024", file=sys.stderr)
        return 2

    ratios = []
    for round_ in range(1, args.rounds + 1):
        with Machine() as machine:
            timings = timing.measure(machine, args.mib * MiB, args.repeats)
        print(f"round {round_}: {args.mib} MiB on {env.release}")
        for line in timing.report(timings):
            print(line)
        ratios.append(timings[1].cpu_median / timings[0].cpu_median)
    if len(ratios) > 1:
        spread = (max(ratios) - min(ratios)) / statistics.median(ratios)
        print(
            f"4 KiB / THP ratio (CPU time) over {len(ratios)} rounds: "
            f"{', '.join(f'{r:.1f}' for r in ratios)} (spread {spread:.0%} of the median)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
