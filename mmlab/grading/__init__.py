"""Exercises with checks, and the machinery that builds and grades them.

In a notebook::

    from mmlab.grading import check, learner_id, variant
    learner_id("ada.lovelace")            # first cell: who you are (see mmlab.grading.learner)
    v = variant("fork-cow")               # your own numbers for this exercise
    ...                                   # your answer, computed with mmlab
    check("fork-cow-counts", answer)      # a check cell: one call, the logic lives in the library

A check shows its verdict and never stops the notebook, so Run All shows every result.
The answer key (``mmlab.grading.checks``) is registered in library modules
(``mmlab.grading.registry``); what exercises give learners is ``mmlab.grading.exercises``.
``mmlab build`` makes ``exercises/`` from ``solutions/`` (``mmlab.grading.build``),
``mmlab grade`` grades submitted notebooks in a sandbox (``mmlab.grading.grader``), and
``mmlab check`` runs a learner's own notebooks with the public checks (``mmlab.grading.selfcheck``).
"""

from .answers import check
from .learner import Variant, learner_id, variant

__all__ = ["Variant", "check", "learner_id", "variant"]
