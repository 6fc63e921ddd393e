"""``mmlab check [NOTEBOOK ...]``: which of your exercises pass their public checks, and what to reread.

Runs your notebooks (default: your own copies in my-work/exercises/ where ``mmlab lab`` made
them, else every notebook in exercises/), reading them only,
with the public checks only; hidden checks run only when your work is graded, and the
report says so. Exit status 0 when every public check passed, 1 otherwise.
"""

from __future__ import annotations

import argparse
import sys
import textwrap
from pathlib import Path

from . import registry
from .gradebook import points_text
from .outcomes import GRADER_ERROR
from .sandbox import Limits
from .selfcheck import SelfCheck, run_public_checks


def configure(parser: argparse.ArgumentParser) -> None:
    defaults = Limits()
    parser.add_argument(
        "notebooks",
        type=Path,
        nargs="*",
        metavar="NOTEBOOK",
        help="notebooks to check (default: your copies in my-work/exercises, else every notebook in --exercises)",
    )
    parser.add_argument(
        "--exercises",
        type=Path,
        default=Path("exercises"),
        help="the released exercises, whose check cells are used (default: exercises)",
    )
    parser.add_argument("--jobs", "-j", type=int, default=1, help="notebooks checked at once (default: 1)")
    parser.add_argument(
        "--cell-timeout",
        type=float,
        default=defaults.cell_timeout,
        help=f"seconds one cell may run (default: {defaults.cell_timeout:g})",
    )


def run(args: argparse.Namespace) -> int:
    mine = args.exercises.parent / "my-work" / "exercises"  # where mmlab lab keeps the learner's copies
    notebooks = args.notebooks or sorted((mine if mine.is_dir() else args.exercises).glob("*.ipynb"))
    if not notebooks:
        print(f"mmlab check: no notebooks to check (none given, and none in {args.exercises}/).", file=sys.stderr)
        return 2
    absent = [str(p) for p in notebooks if not p.is_file()]
    if absent:
        print(f"mmlab check: no such notebook: {', '.join(absent)}", file=sys.stderr)
        return 2
    print("mmlab check: running copies of your notebooks with the public checks only.\n")
    limits = Limits(cell_timeout=args.cell_timeout)
    checked = run_public_checks(notebooks, exercises=args.exercises, limits=limits, jobs=args.jobs)
    print(report(checked))
    checkable = all(s.result.status != GRADER_ERROR for s in checked)  # a notebook that could not be checked fails
    return 0 if checkable and all(c.status == "passed" for s in checked for c in s.result.checks) else 1


def report(checked: list[SelfCheck]) -> str:
    """The table of notebooks and checks, then the totals and what to reread next."""
    lines, first_failure = [], None
    for item in checked:
        result = item.result
        lines.append(f"{result.notebook}: {points_text(result.score)} of {points_text(result.max_score)} points")
        lines += [f"  ! {note}" for note in result.notes]
        for check in result.checks:
            mark = "✔" if check.status == "passed" else "✘"
            lines.append(
                f"  {mark} {check.check}: {check.status}, {points_text(check.points)}/{points_text(check.max_points)}"
            )
            if check.status != "passed":
                first_failure = first_failure or check.check
                body = check.message.split("\n", 1)[-1] if check.status == "failed" else check.message
                lines += [textwrap.indent(textwrap.fill(part, 100), "      ") for part in body.splitlines()]
        lines.append("")
    checks = [c for item in checked for c in item.result.checks]
    passed = [c for c in checks if c.status == "passed"]
    hidden = sum(item.hidden_not_run for item in checked)
    lines.append(
        f"Public checks passed: {len(passed)} of {len(checks)} "
        f"({points_text(sum(c.points for c in checks))} of {points_text(sum(c.max_points for c in checks))} points)."
    )
    if hidden:
        lines.append(
            f"Hidden checks were not run ({hidden} of them): they run only when your work is graded,\n"
            "so passing every public check does not guarantee full marks."
        )
    else:
        lines.append("Hidden checks were not run: they run only when your work is graded.")
    if first_failure:
        lines.append(f"Next: reread {registry.get_check(first_failure).section}.")
    return "\n".join(lines)
