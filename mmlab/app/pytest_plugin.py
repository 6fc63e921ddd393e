"""The project's pytest policies, loaded for every pytest run in this project (``-p
mmlab.app.pytest_plugin`` in pyproject.toml), whatever paths it is given.

- Jupyter and IPython keep their per-user files (kernel connection files, history) in the
  project's ``.jupyter/`` folder rather than the home directory, as ``mmlab lab`` does: the
  notebook kernels nbval starts would otherwise write under ``~``.
- A test marked ``live``, ``browser`` or ``vm`` is skipped, with the reason, on a machine
  that lacks what it needs (the same findings ``mmlab doctor`` shows). Under ``CI=true``
  a missing browser or VM prerequisite fails the test instead, so CI cannot pass by
  skipping it (.ci/run installs Chromium and QEMU).
- ``MMLAB_LEARNER`` is unset: the solutions' stored outputs are those of the anonymous
  learner, and a learner id left in the shell would change every seeded variant.
"""

import functools
import os

import pytest

from . import doctor
from .jupyter import jupyter_home, with_jupyter_home

MARKER_NEEDS = {"live": doctor.LIVE_LAB_NEEDS, "browser": doctor.BROWSER_TESTS_NEED, "vm": doctor.VM_TESTS_NEED}
REQUIRED_IN_CI = {"browser", "vm"}


def pytest_configure(config):
    os.environ.update(with_jupyter_home(os.environ, jupyter_home(config.rootpath)))
    os.environ.pop("MMLAB_LEARNER", None)


@functools.cache
def machine_findings():
    return tuple(doctor.diagnose(doctor.gather()))


def pytest_runtest_setup(item):
    for marker, needs in MARKER_NEEDS.items():
        if item.get_closest_marker(marker) is None:
            continue
        reason = doctor.unmet(machine_findings(), needs)
        if reason is None:
            continue
        if marker in REQUIRED_IN_CI and os.environ.get("CI") == "true":
            pytest.fail(f"CI must run this {marker} test, but {reason}", pytrace=False)
        pytest.skip(f"{marker} test on a machine without it: {reason}")
