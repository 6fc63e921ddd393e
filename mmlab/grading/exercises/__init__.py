"""What exercise notebooks import: the model set-ups, inputs and tools each exercise gives learners.

This package is the learner's side of the exercises and holds no answers: it is what a graded
notebook's sandbox can see of ``mmlab.grading``, beside the learner id, the variants and the
answer collector. The answer key (expected answers, hidden inputs, misconceptions) is
``mmlab.grading.checks``, which only the grader reads.
"""

import importlib
import pkgutil


def load_all() -> None:
    """Import every exercise module, so that the inputs they define decode as themselves."""
    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}")
