"""Compare a learner's answer with the expected one, and say in words what is wrong.

The explanation points at the first difference (a wrong type, a list of the wrong length,
the first wrong item, a missing key, a number that is too large) without printing the
expected answer itself, so feedback helps without handing the answer over.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Set
from numbers import Integral, Real
from typing import Any

SHOWN_CHARS = 80


def shown(value: Any) -> str:
    """``repr(value)``, shortened to fit a one-line message."""
    text = repr(value)
    return text if len(text) <= SHOWN_CHARS else text[: SHOWN_CHARS - 3] + "..."


def kind(value: Any) -> str:
    """A learner-friendly name for the type of ``value``."""
    if isinstance(value, bool):
        return "True/False"
    if isinstance(value, Real):
        return "a number"
    if isinstance(value, str):
        return "text (a str)"
    if isinstance(value, Mapping):
        return "a dict"
    if isinstance(value, Set):
        return "a set"
    if isinstance(value, list | tuple):
        return f"a {type(value).__name__}"
    if value is None:
        return "None"
    return f"a {type(value).__name__}"


def _is_number(value: Any) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool)


def mismatch(answer: Any, expected: Any) -> str | None:
    """None when ``answer`` equals ``expected``; otherwise what is wrong, in one sentence.

    Floats compare with a relative tolerance of 1e-9; integers exactly; a sequence must have
    the expected type family (list or tuple both do), length and items, a dict the expected
    keys and values, a set the expected members.
    """
    if isinstance(expected, bool) or isinstance(answer, bool):
        if not (isinstance(answer, bool) and isinstance(expected, bool)):
            return _wrong_kind(answer, expected)
        return None if answer == expected else f"you gave {answer}, which is not it"
    if _is_number(expected):
        return _number_mismatch(answer, expected)
    if isinstance(expected, Mapping):
        return _mapping_mismatch(answer, expected)
    if isinstance(expected, Set):
        return _set_mismatch(answer, expected)
    if isinstance(expected, list | tuple):
        return _sequence_mismatch(answer, expected)
    if not isinstance(answer, type(expected)):
        return _wrong_kind(answer, expected)
    if answer == expected:
        return None
    if isinstance(answer, str) and answer.strip().lower() == expected.strip().lower():
        return f"you gave {shown(answer)}: almost, but check upper/lower case and spaces"
    return f"you gave {shown(answer)}, which is not it"


def _wrong_kind(answer: Any, expected: Any) -> str:
    return f"you gave {kind(answer)} ({shown(answer)}), but {kind(expected)} is expected"


def _number_mismatch(answer: Any, expected: Real) -> str | None:
    if not _is_number(answer):
        return _wrong_kind(answer, expected)
    if isinstance(expected, Integral) and isinstance(answer, Integral):
        same = answer == expected
    else:
        try:
            same = math.isclose(answer, expected, rel_tol=1e-9, abs_tol=1e-12)
        except OverflowError:  # an integer beyond any float is no float's equal
            same = False
    if same:
        return None
    return f"you gave {shown(answer)}, which is too {'large' if answer > expected else 'small'}"


def _sequence_mismatch(answer: Any, expected: list | tuple) -> str | None:
    if not isinstance(answer, list | tuple):
        return _wrong_kind(answer, expected)
    if len(answer) != len(expected):
        return f"your {type(answer).__name__} has {len(answer)} items, but {len(expected)} are expected"
    for index, (got, want) in enumerate(zip(answer, expected, strict=True)):
        problem = mismatch(got, want)
        if problem:
            return f"item {index} (counting from 0) is wrong: {problem}"
    return None


def _mapping_mismatch(answer: Any, expected: Mapping) -> str | None:
    if not isinstance(answer, Mapping):
        return _wrong_kind(answer, expected)
    missing = [k for k in expected if k not in answer]
    extra = [k for k in answer if k not in expected]
    if missing:
        return f"your dict lacks the key(s) {', '.join(map(shown, missing))}"
    if extra:
        return f"your dict has key(s) that do not belong: {', '.join(map(shown, extra))}"
    for key, want in expected.items():
        problem = mismatch(answer[key], want)
        if problem:
            return f"the value for key {shown(key)} is wrong: {problem}"
    return None


def _set_mismatch(answer: Any, expected: Set) -> str | None:
    if not isinstance(answer, Set):
        return _wrong_kind(answer, expected)
    extra = sorted(answer - expected, key=repr)
    missing = len(expected - answer)
    if not extra and not missing:
        return None
    parts = []
    if extra:
        parts.append(f"it has member(s) that do not belong: {', '.join(map(shown, extra))}")
    if missing:
        parts.append(f"it lacks {missing} expected member(s)")
    return "your set is wrong: " + "; ".join(parts)
