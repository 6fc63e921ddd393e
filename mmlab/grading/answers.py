"""The learner's side of a check: ``check(id, answer)``, and ``report`` for the grader.

Collecting an answer (``mmlab.grading.collect``) turns it into plain data. Nothing here
decides whether an answer is right. In a learner's own notebook,
``check`` hands the collected answer to the judge (``mmlab.grading.judge``) and shows the
verdict; in a graded run the grader collects every answer itself, from outside the notebook's
kernel, through ``report``, and judges it where the notebook cannot reach.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from . import plain
from .collect import collect

GRADING_ENV = "MMLAB_GRADING"
"""Set in the kernel of a graded run: ``check`` then leaves the collecting to the grader."""

MIME = "application/vnd.mmlab.answer+json"


def report(check_id: str, answer: Callable[[], Any], cases_json: str) -> None:
    """Collect the answer of ``check_id`` and show it as one output the grader reads (a graded run)."""
    from IPython.display import display

    cases = plain.loads(cases_json)
    display({MIME: {"check": check_id, "answer": collect(answer, cases)}}, raw=True)


def check(check_id: str, answer: Any) -> None:
    """Check ``answer`` for check ``check_id`` and show the verdict; a failure does not stop the notebook.

    ``answer`` is a value, or a function when the exercise asks for one (the check then calls
    it on its own inputs).
    """
    if os.environ.get(GRADING_ENV):
        print(f"({check_id}: the grader checks this answer at the exercise's own check cell.)")
        return
    from .judge import check_here

    check_here(check_id, answer)
