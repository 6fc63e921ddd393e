"""``mmlab build``: regenerate ``exercises/`` from ``solutions/`` (see mmlab.grading.build)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .build import build
from .notebooks import MarkupError


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--solutions", type=Path, default=Path("solutions"), help="source notebooks (default: solutions)"
    )
    parser.add_argument("--exercises", type=Path, default=Path("exercises"), help="output folder (default: exercises)")
    parser.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 if exercises/ is not what a build would write"
    )


def run(args: argparse.Namespace) -> int:
    if not args.solutions.is_dir():
        print(
            f"mmlab build: there is no folder {args.solutions}; run it in the course folder "
            "or say where the solutions are with --solutions DIR",
            file=sys.stderr,
        )
        return 2
    try:
        report = build(args.solutions, args.exercises, dry_run=args.check)
    except MarkupError as error:
        print(f"mmlab build: {error}", file=sys.stderr)
        return 1
    verb = ("would write", "would remove") if args.check else ("wrote", "removed")
    for name in report.written:
        print(f"{verb[0]} {args.exercises / name}")
    for name in report.removed:
        print(f"{verb[1]} {args.exercises / name} (no notebook of that name in {args.solutions})")
    print(f"{len(report.unchanged)} exercise notebook(s) already up to date.")
    if args.check and report.changed:
        print(f"{args.exercises} is stale: run `mmlab build`.", file=sys.stderr)
        return 1
    return 0
