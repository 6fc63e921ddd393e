"""Grading speed, in the sandbox: 100 submissions of one exercise, mixed right, wrong and blank.

    .venv/bin/python benchmarks/grade_100.py [--learners 100] [--jobs N] [--notebook 04-mlock.ipynb]

Each learner submits the course's exercise notebook: most with the reference answers, some
with a wrong one, some untouched (the stubs). The goal is at most 90 s for 100 submissions on
2 cores with the default --jobs (the number of CPUs).
"""

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import nbformat

from mmlab.grading.build import build_exercise
from mmlab.grading.grader import grade
from mmlab.grading.notebooks import BEGIN_SOLUTION, END_SOLUTION
from mmlab.grading.sandbox import Limits, sandbox_problem

ROOT = Path(__file__).resolve().parent.parent
GOAL_SECONDS = 90
MIX = ["right"] * 6 + ["wrong"] * 2 + ["blank"] * 2


def submissions(source: nbformat.NotebookNode, name: str) -> dict[str, nbformat.NotebookNode]:
    """The three kinds of submission: reference answers, a wrong answer, the stubs."""
    blank = build_exercise(source, name)
    right, wrong = nbformat.from_dict(blank), nbformat.from_dict(blank)
    for cells in zip(source.cells, right.cells, wrong.cells, strict=True):
        reference, mine, bad = cells
        if mine.metadata.get("mmlab", {}).get("role") == "solution":
            lines = [
                line for line in reference.source.splitlines() if line.strip() not in (BEGIN_SOLUTION, END_SOLUTION)
            ]
            mine.source = "\n".join(lines)
            bad.source = mine.source.replace("return", "return None and", 1) if "return" in mine.source else "x = 0"
    return {"right": right, "wrong": wrong, "blank": blank}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--learners", type=int, default=100)
    parser.add_argument("--jobs", type=int, default=os.cpu_count())
    parser.add_argument("--notebook", default="04-mlock.ipynb")
    args = parser.parse_args()
    problem = sandbox_problem()
    if problem:
        print(f"grade_100: not measured, no sandbox here: {problem}")
        return 0
    os.environ.pop("MMLAB_CHECK_PATH", None)
    source = nbformat.read(ROOT / "solutions" / args.notebook, as_version=4)
    kinds = submissions(source, args.notebook)
    with tempfile.TemporaryDirectory(prefix="mmlab-bench-") as folder:
        root = Path(folder)
        (root / "solutions").mkdir()
        nbformat.write(source, root / "solutions" / args.notebook)
        for n in range(args.learners):
            (root / "submissions" / f"learner-{n:03d}").mkdir(parents=True)
            nbformat.write(kinds[MIX[n % len(MIX)]], root / "submissions" / f"learner-{n:03d}" / args.notebook)
        started = time.monotonic()
        run = grade(
            root / "submissions",
            root / "out",
            source=root / "solutions",
            limits=Limits(),
            jobs=args.jobs,
            progress=False,
        )
        seconds = time.monotonic() - started
    scores = [r.score for r in run.results]
    verdict = "within" if seconds <= GOAL_SECONDS * args.learners / 100 else "OVER"
    print(
        f"graded {len(run.results)} submissions of {args.notebook} with --jobs {args.jobs} on {os.cpu_count()} cores "
        f"in {seconds:.1f} s ({seconds / len(run.results):.2f} s each, mean score {sum(scores) / len(scores):.2f}): "
        f"{verdict} the goal of {GOAL_SECONDS} s per 100"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
