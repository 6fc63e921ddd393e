"""The registry of checks and exercise variants, filled by the modules that define them.

A check is registered once, by id, in a module of the answer key (``mmlab/grading/checks/*.py``,
or a course-local folder named by ``MMLAB_CHECK_PATH``), never pasted into a notebook cell.
The key is read only by the grader and by a learner's own notebook, never by a graded
kernel, so hidden inputs belong in it, drawn with ``learner.hidden_rng``, not in a variant::

    @register_variant("fork-cow")
    def fork_cow_variant(rng):
        return {"pages": rng.randrange(2, 9)}

    @register(
        "fork-cow-counts", points=2, exercise="fork-cow",
        expects="the number of pages the child still shares with its parent ({pages} written)",
        section="course/03-fork.ipynb, section 2 'Copy-on-write'",
        mistakes={"that counts the pages of both processes": lambda v: 2 * v.pages},
    )
    def fork_cow_counts(v):
        ...  # compute the answer with mmlab.Machine for variant v

The decorated function computes the expected answer from the learner's variant, so no
expected value is ever typed in. With ``cases=``, the learner's answer is a function: the
check calls it on every argument tuple ``cases(variant)`` returns and compares each result
with the decorated (reference) function called on the same arguments.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.util
import os
import pkgutil
import random
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CHECK_PATH_ENV = "MMLAB_CHECK_PATH"
"""Extra folders of check modules (``*.py``), separated like PATH, loaded after the package's."""

Solver = Callable[..., Any]


@dataclass(frozen=True)
class Check:
    """One graded check: what it expects, what it is worth, and how to compute the answer.

    ``expects`` and the explanations in ``mistakes`` may name variant parameters in braces
    (``{pages}``); they are filled in from the learner's variant.
    """

    id: str
    points: float
    exercise: str
    expects: str
    section: str
    solve: Solver
    hidden: bool = False
    cases: Callable[[Any], list[tuple]] | None = None
    mistakes: tuple[tuple[str, Solver], ...] = ()

    @property
    def takes_function(self) -> bool:
        """True when the learner answers with a function that the check calls."""
        return self.cases is not None


VariantMaker = Callable[[random.Random], Mapping[str, Any]]

_checks: dict[str, Check] = {}
_variants: dict[str, VariantMaker] = {}
_loaded: set[str] = set()  # "package" and the MMLAB_CHECK_PATH folders already imported
_loading = threading.RLock()  # `mmlab check --jobs N` looks checks up from several threads at once


class UnknownCheck(LookupError):
    """A check id that no loaded module registered."""


def register(
    check_id: str,
    *,
    points: float,
    expects: str,
    section: str,
    exercise: str | None = None,
    hidden: bool = False,
    cases: Callable[[Any], list[tuple]] | None = None,
    mistakes: Mapping[str, Solver] | None = None,
) -> Callable[[Solver], Solver]:
    """Decorator: register the decorated function as the solver of check ``check_id``.

    ``exercise`` names the variant that seeds the check (default: the check id); the public
    and hidden checks of one exercise share it, so they see the same numbers. ``mistakes``
    maps an explanation to a function computing a common wrong answer from the variant;
    a learner who gives that answer is told the explanation.
    """
    if not check_id or check_id != check_id.strip() or "\n" in check_id:
        raise ValueError(f"check id {check_id!r} must be a non-empty single-line name")
    if points <= 0:
        raise ValueError(f"check {check_id!r}: points must be positive, not {points}")

    def decorate(solve: Solver) -> Solver:
        check = Check(
            id=check_id,
            points=points,
            exercise=exercise or check_id,
            expects=expects,
            section=section,
            solve=solve,
            hidden=hidden,
            cases=cases,
            mistakes=tuple((mistakes or {}).items()),
        )
        _claim(_checks, check_id, check, solve, "check")
        return solve

    return decorate


def register_variant(exercise_id: str) -> Callable[[VariantMaker], VariantMaker]:
    """Decorator: the decorated ``make(rng) -> dict`` draws the parameters of ``exercise_id``.

    ``rng`` is a ``random.Random`` seeded from the learner id and the exercise id, so each
    learner gets their own numbers and the grader draws the same ones again.
    """

    def decorate(make: VariantMaker) -> VariantMaker:
        _claim(_variants, exercise_id, make, make, "variant")
        return make

    return decorate


def _claim(table: dict, key: str, value: Any, function: Callable, kind: str) -> None:
    """Store ``value`` under ``key``, refusing a second definition from a different function.

    Re-running the same module (a notebook re-importing it, importlib.reload) is allowed.
    """
    previous = table.get(key)
    if previous is not None:
        old = previous.solve if kind == "check" else previous
        if (old.__module__, old.__qualname__) != (function.__module__, function.__qualname__):
            raise ValueError(
                f"{kind} {key!r} is registered twice: by {old.__module__}.{old.__qualname__} "
                f"and by {function.__module__}.{function.__qualname__}; give one of them another id"
            )
    table[key] = value


def load_checks() -> None:
    """Import every check module once: the package's, then those of each ``MMLAB_CHECK_PATH`` folder.

    A folder added to ``MMLAB_CHECK_PATH`` later is loaded on the next call.
    """
    with _loading:
        if "package" not in _loaded:
            _loaded.add("package")
            from . import checks, exercises

            for package in (exercises, checks):
                for module in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
                    importlib.import_module(f"{package.__name__}.{module.name}")
        for folder in filter(None, os.environ.get(CHECK_PATH_ENV, "").split(os.pathsep)):
            key = str(Path(folder).resolve())
            if key not in _loaded:
                _loaded.add(key)
                for path in sorted(Path(folder).glob("*.py")):
                    _import_file(path)


def _import_file(path: Path) -> None:
    name = f"mmlab_course_checks.{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load check module {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)


def get_check(check_id: str) -> Check:
    """The registered check ``check_id``; UnknownCheck, with the nearest ids, if there is none."""
    load_checks()
    try:
        return _checks[check_id]
    except KeyError:
        near = difflib.get_close_matches(str(check_id), _checks, n=3)
        hint = f" Did you mean {', '.join(map(repr, near))}?" if near else ""
        raise UnknownCheck(f"there is no check {check_id!r}.{hint}") from None


def exercises() -> list[str]:
    """The ids of every exercise with registered parameters."""
    load_checks()
    return sorted(_variants)


def variant_maker(exercise_id: str) -> VariantMaker | None:
    """The parameter generator of ``exercise_id``, or None for an exercise without numbers."""
    load_checks()
    return _variants.get(exercise_id)


def hidden_checks_of(exercise_id: str) -> list[Check]:
    """The hidden checks that share the variant ``exercise_id`` (run only by the grader)."""
    load_checks()
    return [c for c in _checks.values() if c.hidden and c.exercise == exercise_id]
