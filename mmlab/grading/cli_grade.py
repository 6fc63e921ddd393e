"""``mmlab grade SUBMISSIONS --out DIR``: grade every learner's notebooks (see mmlab.grading.grader).

SUBMISSIONS holds one folder per learner, named by the learner's id, with the notebooks
named as in ``exercises/``. The folder name is the learner id the checks use. Each notebook's
kernel runs in a bubblewrap sandbox; without bubblewrap, grading refuses to run learners'
code unless ``--unsafe`` says to run it unconfined (only for notebooks you trust).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections import Counter
from pathlib import Path

from .gradebook import points_text
from .grader import GradeRun, GradingError, grade
from .sandbox import Limits, sandbox_problem

MIN_MEMORY_MB = 256


def configure(parser: argparse.ArgumentParser) -> None:
    defaults = Limits()
    parser.add_argument(
        "submissions",
        type=Path,
        metavar="SUBMISSIONS",
        help="folder with one folder per learner: SUBMISSIONS/<learner>/<notebook>.ipynb",
    )
    parser.add_argument("--out", type=Path, required=True, help="where grades.csv, the gradebook and feedback go")
    parser.add_argument(
        "--source",
        type=Path,
        default=Path("solutions"),
        help="the source notebooks, with solutions and hidden checks (default: solutions)",
    )
    parser.add_argument(
        "--assignment",
        "-a",
        action="append",
        default=[],
        metavar="NOTEBOOK",
        help="grade this assignment only (repeatable; default: every one some learner submitted)",
    )
    parser.add_argument(
        "--jobs", "-j", type=int, default=os.cpu_count() or 1, help="notebooks graded at once (default: CPUs)"
    )
    parser.add_argument(
        "--unsafe",
        action="store_true",
        help="run notebooks without the sandbox (never for untrusted work: it can read and write as you)",
    )
    parser.add_argument(
        "--cell-timeout",
        type=float,
        default=defaults.cell_timeout,
        help=f"seconds one cell may run (default: {defaults.cell_timeout:g})",
    )
    parser.add_argument(
        "--notebook-timeout",
        type=float,
        default=defaults.notebook_timeout,
        help=f"seconds one notebook may run (default: {defaults.notebook_timeout:g})",
    )
    parser.add_argument(
        "--memory-mb",
        type=int,
        default=defaults.memory_mb,
        help=f"address space of a notebook's kernel, in MiB (default: {defaults.memory_mb})",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    if args.jobs < 1:
        print("mmlab grade: --jobs must be 1 or more", file=sys.stderr)
        return 2
    if args.memory_mb < MIN_MEMORY_MB:
        print(
            f"mmlab grade: --memory-mb {args.memory_mb} is too small for Python and a kernel to start; "
            f"give at least {MIN_MEMORY_MB}",
            file=sys.stderr,
        )
        return 2
    problem = sandbox_problem()
    if problem and not args.unsafe:
        print(
            f"mmlab grade: refusing to run learners' notebooks without a sandbox: {problem}.\n"
            "Install bubblewrap and run again; or, only for notebooks you trust, add --unsafe.",
            file=sys.stderr,
        )
        return 2
    if args.unsafe:
        print("mmlab grade: --unsafe: notebooks run without the sandbox, as you.", file=sys.stderr)
    limits = Limits(args.cell_timeout, args.notebook_timeout, args.memory_mb)
    try:
        result = grade(
            args.submissions,
            args.out,
            source=args.source,
            limits=limits,
            assignments=args.assignment,
            jobs=args.jobs,
            unsafe=args.unsafe,
            progress=not args.quiet,
        )
    except GradingError as error:
        print(f"mmlab grade: {error}", file=sys.stderr)
        return 2
    print(summary(result, args))
    return 0


def summary(run: GradeRun, args: argparse.Namespace) -> str:
    """The table that ends a run: per notebook, the mean score and how many of each status."""
    by_notebook: dict[str, list] = {}
    for result in run.results:
        by_notebook.setdefault(result.notebook, []).append(result)
    rows = [("notebook", "learners", "mean", "max", "checks passed", "problems")]
    for notebook in sorted(by_notebook):
        results = by_notebook[notebook]
        checks = [c for r in results for c in r.checks]
        statuses = Counter(c.status for c in checks if c.status not in ("passed", "failed"))
        rows.append(
            (
                notebook,
                str(len(results)),
                f"{sum(r.score for r in results) / len(results):.1f}",
                points_text(results[0].max_score),
                f"{sum(c.status == 'passed' for c in checks)}/{len(checks)}",
                ", ".join(f"{n} {s}" for s, n in sorted(statuses.items())) or "-",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    lines.append(
        f"Graded {len(run.learners)} learner(s) x {len(by_notebook)} notebook(s) in {run.seconds:.1f} s "
        f"with --jobs {args.jobs}. Results: {args.out / 'grades.csv'}, feedback: {args.out / 'learners'}/."
    )
    return "\n".join(lines)
