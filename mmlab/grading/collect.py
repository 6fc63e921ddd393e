"""Collect an answer as plain data: what a value is, or what a function gives for each input.

This runs in the learner's kernel (a graded one included), and decides nothing: the judge
(``mmlab.grading.judge``) compares what it collects with the answer key, elsewhere.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from . import plain


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
