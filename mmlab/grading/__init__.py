"""Checks for the exercise notebooks, and the machinery that builds and grades them.

In a notebook::

    from mmlab.grading import check, learner_id, variant
    learner_id("ada.lovelace")            # first cell: who you are (see mmlab.grading.learner)
    v = variant("fork-cow")               # your own numbers for this exercise
    ...                                   # your answer, computed with mmlab
    check("fork-cow-counts", answer)      # a check cell: one call, logic lives in the library

Checks are registered in library modules (``mmlab.grading.checks``; see
``mmlab.grading.registry``). ``mmlab build`` makes ``exercises/`` from ``solutions/``
(``mmlab.grading.build``), ``mmlab grade`` grades submitted notebooks
(``mmlab.grading.grader``), and ``mmlab check`` runs a learner's own notebooks with the
public checks (``mmlab.grading.selfcheck``).
"""

from .checking import CheckBroken, CheckFailed, check
from .learner import Variant, learner_id, variant
from .registry import register, register_variant

__all__ = [
    "CheckBroken",
    "CheckFailed",
    "Variant",
    "check",
    "learner_id",
    "register",
    "register_variant",
    "variant",
]
