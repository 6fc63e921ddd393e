"""The learner's side of a check: ``check(id, answer)``, and how an answer is collected.

Collecting an answer means turning it into plain data (``mmlab.grading.plain``): a value is
encoded as it is; a function is called on each input the check chose and its results are
encoded. Nothing here decides whether an answer is right. In a learner's own notebook,
``check`` hands the collected answer to the judge (``mmlab.grading.judge``) and shows the
verdict; in a graded run the grader collects every answer itself, from outside the notebook's
kernel, through ``report``, and judges it where the notebook cannot reach.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from . import plain

GRADING_ENV = "MMLAB_GRADING"
"""Set in the kernel of a graded run: ``check`` then leaves the collecting to the grader."""

MIME = "application/vnd.mmlab.answer+json"


def describe(error: BaseException) -> str:
    """``TypeName: message``, shortened for a one-line report."""
    text = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
    return text if len(text) <= 500 else text[:497] + "..."


def _encoded(value: Any) -> dict:
    try:
        return {"value": plain.encode(value)}
    except plain.NotPlain as problem:
        return {"unplain": str(problem)}


def collect(answer: Callable[[], Any], cases: list | None) -> dict:
    """The answer as plain data: what ``answer()`` gives, or, when ``cases`` (plain argument
    lists) are given, what the function it gives returns for each of them."""
    try:
        given = answer()
    except Exception as error:
        return {"error": describe(error)}
    if cases is None:
        if callable(given) and not isinstance(given, type):
            return {"function": getattr(given, "__name__", "a function")}
        return _encoded(given)
    if not callable(given):
        return {"not_function": _encoded(given)}
    from .exercises import load_all

    load_all()
    results = []
    for args in cases:
        try:
            results.append(_encoded(given(*plain.decode(args))))
        except NotImplementedError:
            results.append({"stub": True})
        except Exception as error:
            results.append({"error": describe(error)})
    return {"name": getattr(given, "__name__", "your function"), "results": results}


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
