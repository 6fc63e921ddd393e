"""Grading speed: 100 synthetic learners, each submitting the two fixture notebooks.

    .venv/bin/python benchmarks/grade_100.py [--learners 100] [--jobs 2]

Most learners are right or wrong; one in ten leaves the stubs; one in twenty loops forever
(stopped by the 10 s cell timeout) and one in twenty submits something broken (bad JSON,
os._exit, a memory bomb, a missing notebook). The goal is at most 5 minutes for 100 learners
on 2 cores with --jobs 2.
"""

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from fixtures.grading import corpus  # noqa: E402

from mmlab.grading.grader import grade  # noqa: E402
from mmlab.grading.sandbox import Limits  # noqa: E402

GOAL_SECONDS = 300
MIX = ["ada"] * 12 + ["wrong"] * 4 + ["stubs"] * 2 + ["loop", "bad-json", "exits", "bomb"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--learners", type=int, default=100)
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    os.environ["MMLAB_CHECK_PATH"] = str(corpus.CHECKS_DIR)
    with tempfile.TemporaryDirectory(prefix="mmlab-bench-") as folder:
        root = Path(folder)
        sources = corpus.write_sources(root / "solutions")
        writers = corpus.learners(sources)
        for n in range(args.learners):
            writers[MIX[n % len(MIX)]](root / "submissions" / f"learner-{n:03d}")
        started = time.monotonic()
        run = grade(root / "submissions", root / "out", source=sources, jobs=args.jobs, progress=False,
                    limits=Limits(cell_timeout=10, notebook_timeout=60, memory_mb=1024))
        seconds = time.monotonic() - started
    notebooks = len(run.results)
    verdict = "within" if seconds <= GOAL_SECONDS * args.learners / 100 else "OVER"
    print(f"graded {args.learners} learners ({notebooks} notebooks) with --jobs {args.jobs} on "
          f"{os.cpu_count()} cores in {seconds:.1f} s: {seconds / notebooks:.2f} s per notebook, "
          f"{verdict} the goal of {GOAL_SECONDS} s per 100 learners")
    return 0


if __name__ == "__main__":
    sys.exit(main())
