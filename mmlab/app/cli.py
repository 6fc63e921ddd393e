"""The ``mmlab`` command: one table of subcommands, each in its own module, imported lazily.

A subcommand module defines ``configure(parser)``, which adds its options to an
``argparse`` parser, and ``run(args) -> int``, which does the work and returns the exit
status. Only the module of the subcommand being run is imported, so ``mmlab doctor`` works
even when a heavy dependency of another subcommand (JupyterLab, say) is missing.

Bad input (an unknown subcommand or option) prints usage and exits with status 2, as
``argparse`` does.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# Subcommand name -> (module that implements it, one line for ``mmlab --help``).
# To add a subcommand, add one row here and write the module; nothing else changes.
COMMANDS: dict[str, tuple[str, str]] = {
    "lab": ("mmlab.app.jupyter", "open the course in JupyterLab"),
    "doctor": ("mmlab.app.doctor", "say what this machine has for the course and what to do about the rest"),
    "live": ("mmlab.live.cli", "run the scenarios on this machine's kernel: compare, fingerprint, time"),
    "build": ("mmlab.grading.cli_build", "regenerate exercises/ from solutions/"),
    "grade": ("mmlab.grading.cli_grade", "grade submitted exercise notebooks: grades, gradebook, feedback"),
    "check": ("mmlab.grading.cli_check", "run your exercise notebooks with their public checks"),
    "export": ("mmlab.app.export", "write a static HTML copy of the course, for reading offline or projecting"),
}


def build_parser(
    selected: str | None = None,
) -> tuple[argparse.ArgumentParser, argparse.ArgumentParser | None]:
    """The argument parser, and the parser of subcommand ``selected`` with its options filled in.

    Every subcommand is listed (so usage and ``--help`` name them all), but only the
    selected one's module is imported to add its options.
    """
    parser = argparse.ArgumentParser(
        prog="mmlab",
        description="mmlab: learn Linux memory management through one kernel patch series.",
    )
    subcommands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    selected_parser = None
    for name, (module_name, summary) in COMMANDS.items():
        subparser = subcommands.add_parser(name, help=summary, description=summary)
        if name == selected:
            module = importlib.import_module(module_name)
            module.configure(subparser)
            subparser.set_defaults(run=module.run)
            selected_parser = subparser
    return parser, selected_parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` (default: the process's arguments), run the subcommand, return its status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    selected = argv[0] if argv and argv[0] in COMMANDS else None
    parser, selected_parser = build_parser(selected)
    args, unknown = parser.parse_known_args(argv)
    if unknown:  # reported by the subcommand, so that its own usage is shown
        (selected_parser or parser).error(f"unrecognized arguments: {' '.join(unknown)}")
    return args.run(args)
