"""Plain data: the only form in which values cross between a graded notebook and the grader.

A graded notebook runs in a sandbox, and nothing it holds is trusted: the grader takes from
it answers only, as JSON text, never pickles or live objects. ``encode`` turns a learner's
answer (or a check's input) into JSON-ready data; ``decode`` turns it back into Python
values on the other side. Both the learner's answer and the expected answer go through the
same round trip before they are compared, so a tuple and a list of the same items agree.

Beyond JSON's types, three tagged forms keep what answers need:

- ``{"$set": [...]}`` for a set;
- ``{"$pairs": [[key, value], ...]}`` for a dict whose keys are not all text;
- ``{"$record": "Name", "fields": {...}}`` for a dataclass instance. Classes registered with
  ``record_type`` (the exercises' inputs, such as a page-table layout) are rebuilt as
  themselves; any other comes back as a read-only ``Record`` with the same fields.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping, Set
from numbers import Integral, Real
from typing import Any

SET, PAIRS, RECORD = "$set", "$pairs", "$record"
MAX_DEPTH = 40
MAX_ITEMS = 200_000
MAX_TEXT = 20 * 2**20

_record_types: dict[str, type] = {}


class NotPlain(ValueError):
    """A value that cannot be graded: the message says what it was and what to give instead."""


def record_type(cls: type) -> type:
    """Class decorator: instances of dataclass ``cls`` decode as ``cls`` again (not a ``Record``)."""
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls.__name__} must be a dataclass to cross as plain data")
    _record_types[cls.__name__] = cls
    return cls


class Record(Mapping[str, Any]):
    """The fields of a dataclass instance of a class this side does not know: read-only, by
    key or by attribute."""

    def __init__(self, name: str, fields: Mapping[str, Any]):
        self._name = name
        self._fields = dict(fields)

    def __getitem__(self, key: str) -> Any:
        return self._fields[key]

    def __iter__(self):
        return iter(self._fields)

    def __len__(self) -> int:
        return len(self._fields)

    def __getattr__(self, name: str) -> Any:
        try:
            return self.__dict__["_fields"][name]
        except KeyError:
            raise AttributeError(f"{self.__dict__.get('_name', 'record')} has no field {name!r}") from None

    def __repr__(self) -> str:
        return f"{self._name}({', '.join(f'{k}={v!r}' for k, v in self._fields.items())})"


def encode(value: Any) -> Any:
    """``value`` as JSON-ready data; NotPlain if it holds something else (a function, a model object)."""
    budget = [MAX_ITEMS]
    return _encode(value, 0, budget)


def _encode(value: Any, depth: int, budget: list[int]) -> Any:
    budget[0] -= 1
    if budget[0] < 0:
        raise NotPlain(f"it holds more than {MAX_ITEMS} items")
    if depth > MAX_DEPTH:
        raise NotPlain(f"it is nested more than {MAX_DEPTH} levels deep")
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, Integral):
        return int(value)
    if isinstance(value, Real):
        number = float(value)
        if not math.isfinite(number):
            return {"$float": repr(number)}
        return number
    if isinstance(value, list | tuple):
        return [_encode(item, depth + 1, budget) for item in value]
    if isinstance(value, Set):
        items = [_encode(item, depth + 1, budget) for item in value]
        return {SET: sorted(items, key=_order)}
    if isinstance(value, Record):
        return {RECORD: value._name, "fields": _encode(dict(value._fields), depth + 1, budget)}
    if isinstance(value, Mapping):
        if all(isinstance(key, str) and not key.startswith("$") for key in value):
            return {key: _encode(item, depth + 1, budget) for key, item in value.items()}
        return {PAIRS: [[_encode(k, depth + 1, budget), _encode(v, depth + 1, budget)] for k, v in value.items()]}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {f.name: getattr(value, f.name) for f in dataclasses.fields(value) if f.init}
        return {RECORD: type(value).__name__, "fields": _encode(fields, depth + 1, budget)}
    raise NotPlain(
        f"it holds {_kind(value)}, which the grader cannot read; "
        "answer with numbers, text, True/False, None, lists, tuples, dicts or sets"
    )


def _kind(value: Any) -> str:
    if callable(value):
        return f"a function ({getattr(value, '__name__', type(value).__name__)})"
    return f"a {type(value).__module__}.{type(value).__qualname__} object"


def _order(item: Any) -> str:
    return json.dumps(item, sort_keys=True)


def decode(data: Any) -> Any:
    """The Python value of plain ``data`` (as ``encode`` made it, or as a sandbox claims it).

    NotPlain if ``data`` is not what ``encode`` makes: a graded notebook can send the grader
    any JSON it likes (a ``$set`` of dicts, a ``$float`` of text, nesting too deep to walk).
    """
    try:
        return _decode(data, 0)
    except NotPlain:
        raise
    except (TypeError, ValueError) as error:  # unhashable members or keys, a $float of no number
        raise NotPlain(f"it is not data the grader can read ({type(error).__name__}: {error})") from None


def _decode(data: Any, depth: int) -> Any:
    if depth > MAX_DEPTH:
        raise NotPlain(f"it is nested more than {MAX_DEPTH} levels deep")
    if isinstance(data, list):
        return [_decode(item, depth + 1) for item in data]
    if not isinstance(data, dict):
        return data
    if SET in data and len(data) == 1:
        return {_hashable(_decode(item, depth + 1)) for item in data[SET]}
    if PAIRS in data and len(data) == 1:
        return {_hashable(_decode(k, depth + 1)): _decode(v, depth + 1) for k, v in data[PAIRS]}
    if "$float" in data and len(data) == 1:
        return float(data["$float"])
    if RECORD in data and set(data) == {RECORD, "fields"} and isinstance(data["fields"], dict):
        fields = _decode(data["fields"], depth + 1)
        cls = _record_types.get(str(data[RECORD]))
        if cls is not None:
            try:
                return cls(**fields)
            except TypeError:
                pass
        return Record(str(data[RECORD]), fields)
    return {key: _decode(value, depth + 1) for key, value in data.items()}


def _hashable(value: Any) -> Any:
    """Lists (from JSON) as tuples, so they can be set members and dict keys again."""
    if isinstance(value, list):
        return tuple(_hashable(item) for item in value)
    if isinstance(value, set):
        return frozenset(value)
    return value


def round_trip(value: Any) -> Any:
    """``decode(encode(value))``: the value as the other side of the boundary sees it."""
    return decode(encode(value))


def dumps(data: Any) -> str:
    return json.dumps(data, ensure_ascii=True, allow_nan=False, separators=(",", ":"))


def loads(text: str) -> Any:
    """Parse JSON text from an untrusted source; NotPlain if it is not JSON or too large."""
    if len(text) > MAX_TEXT:
        raise NotPlain(f"the answer is {len(text)} characters of JSON, over the {MAX_TEXT} the grader reads")
    try:
        return json.loads(text)
    except (json.JSONDecodeError, RecursionError) as error:
        raise NotPlain(f"the answer is not valid JSON ({error})") from None
