"""The engine of ``mmlab check``: run a learner's own notebooks with the public checks only.

Each notebook runs exactly as the grader runs a submission (its file only read, its kernel in
the sandbox when bubblewrap is there, else under the same limits without it: it is the
learner's own code), but without hidden checks and with the learner's own id
(``learner_id(...)`` in the notebook, else ``MMLAB_LEARNER``), so the numbers match what the
learner sees in JupyterLab. The check cells come from the released exercise of the same name
when there is one (so a check cell edited by mistake is restored), else from the notebook itself.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import nbformat

from . import registry, submission
from .grader import Assignment, declared_learner, grade_notebook
from .learner import ANONYMOUS, LEARNER_ENV
from .notebooks import MarkupError
from .outcomes import GRADER_ERROR, NotebookResult
from .sandbox import Limits, sandbox_problem


@dataclass
class SelfCheck:
    """One notebook's public results, and how many hidden checks were left for the grader."""

    result: NotebookResult
    hidden_not_run: int


def run_public_checks(
    notebooks: list[Path], *, exercises: Path | None = None, limits: Limits | None = None, jobs: int = 1
) -> list[SelfCheck]:
    """Run each notebook (never modified) with its public checks; results in the given order."""
    limits = limits or Limits()
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        return list(pool.map(lambda path: _check_one(path, exercises, limits), notebooks))


def _check_one(path: Path, exercises: Path | None, limits: Limits) -> SelfCheck:
    learner = declared_learner(submission.load(path).cells) or os.environ.get(LEARNER_ENV) or ANONYMOUS
    released = exercises / path.name if exercises else None
    source_path = released if released and released.is_file() else path
    try:
        assignment = Assignment.from_notebook(nbformat.read(source_path, as_version=4), path.name)
    except (MarkupError, ValueError, OSError) as error:
        message = f"{source_path} cannot be checked: {error}"
        return SelfCheck(NotebookResult(learner, path.name, GRADER_ERROR, [], [message]), 0)
    unsafe = sandbox_problem() is not None
    result = grade_notebook(assignment, path, learner=learner, limits=limits, hidden=False, unsafe=unsafe)
    exercises_run = {c.exercise for c in assignment.checks}
    hidden = {c.id for exercise in exercises_run for c in registry.hidden_checks_of(exercise)}
    return SelfCheck(result, len(hidden))
