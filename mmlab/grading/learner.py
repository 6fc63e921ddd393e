"""Who the learner is, and the exercise variant (the numbers) that follows from it.

Every learner gets their own variant of an exercise with numbers, so answers cannot be
passed around; the grader draws the same variant again from the same learner id.

The learner id is taken from, in this order:

1. ``MMLAB_GRADED_LEARNER``: set by ``mmlab grade`` to the name of the submission's folder
   (``SUBMISSIONS/<learner>/``). It wins, so a grade never depends on what a notebook claims.
2. ``learner_id("your-id")``, called in the first cell of an exercise notebook.
3. ``MMLAB_LEARNER`` in the environment (set once for a JupyterHub user or a shell).
4. ``"anonymous"``: everyone who set nothing shares one variant.

Use the same id as the folder name your work is collected under, or the grader will check
your answers against another learner's numbers (it says so in the feedback).

In a graded run the kernel cannot see the exercises' definitions: the grader draws the
variants itself and hands them in as plain data (``MMLAB_GRADED_VARIANTS``). Either way a
variant's numbers have made the plain-data round trip (``mmlab.grading.plain``), so tuples
read as lists, in the notebook as in the grader.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
from collections.abc import Iterator, Mapping
from typing import Any

from . import plain

GRADED_LEARNER_ENV = "MMLAB_GRADED_LEARNER"
GRADED_VARIANTS_ENV = "MMLAB_GRADED_VARIANTS"
LEARNER_ENV = "MMLAB_LEARNER"
ANONYMOUS = "anonymous"

_declared: str | None = None


def learner_id(name: str | None = None) -> str:
    """Declare who you are (with ``name``) and return the id your variants are drawn for.

    Under ``mmlab grade`` the submission's folder name is used whatever ``name`` says.
    """
    global _declared
    if name is not None:
        if not isinstance(name, str) or not name.strip() or len(name) > 100 or not name.isprintable():
            raise ValueError(f"learner_id({name!r}): give your id as text, e.g. learner_id('ada.lovelace')")
        _declared = name.strip()
    return current_learner()


def current_learner() -> str:
    """The learner id in force (see the module docstring for the order)."""
    return os.environ.get(GRADED_LEARNER_ENV) or _declared or os.environ.get(LEARNER_ENV) or ANONYMOUS


def seed(exercise_id: str, learner: str) -> int:
    """A 64-bit seed for (learner, exercise), the same on every machine and Python version."""
    digest = hashlib.sha256(f"{learner}\0{exercise_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


class Variant(Mapping[str, Any]):
    """The parameters of one exercise for one learner: a read-only mapping, also by attribute.

    ``v["pages"]`` and ``v.pages`` are the same number.
    """

    def __init__(self, exercise_id: str, learner: str, params: Mapping[str, Any]):
        self.exercise = exercise_id
        self.learner = learner
        self._params = dict(params)

    def __getitem__(self, key: str) -> Any:
        return self._params[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._params)

    def __len__(self) -> int:
        return len(self._params)

    def __getattr__(self, name: str) -> Any:
        try:
            return self.__dict__["_params"][name]
        except KeyError:
            raise AttributeError(f"exercise {self.exercise!r} has no parameter {name!r}") from None

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self._params.items()) or "no parameters"
        return f"Variant of {self.exercise!r} for learner {self.learner!r}: {params}"


def variant(exercise_id: str, learner: str | None = None) -> Variant:
    """The parameters of ``exercise_id`` for ``learner`` (default: the current learner).

    An exercise without registered parameters has an empty variant.
    """
    graded = os.environ.get(GRADED_VARIANTS_ENV)
    if graded is not None and learner is None:
        return Variant(exercise_id, current_learner(), plain.decode(json.loads(graded).get(exercise_id, {})))
    learner = learner or current_learner()
    return Variant(exercise_id, learner, plain.round_trip(draw(exercise_id, learner)))


def draw(exercise_id: str, learner: str) -> Mapping[str, Any]:
    """The parameters the exercise's variant maker draws for ``learner`` (empty if it has none)."""
    from . import registry  # the definitions of the exercises, which a graded kernel never sees

    make = registry.variant_maker(exercise_id)
    return make(random.Random(seed(exercise_id, learner))) if make else {}


def hidden_rng(v: Variant) -> random.Random:
    """A generator for a hidden check's own inputs, seeded apart from the public variant, so
    that nothing a notebook can see predicts them."""
    return random.Random(seed(f"{v.exercise}\0hidden", v.learner))
