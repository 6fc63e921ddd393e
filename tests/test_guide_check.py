"""``mmlab check`` end to end on the course's own notebooks, as issue 9 and INSTRUCTORS.md
promise: on solutions/ every public check passes, on the released exercises/ none does, the
notebooks it checks are never written, and the report says that hidden checks were not run.
"""

import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parent.parent
EXERCISES = sorted((PROJECT / "exercises").glob("*.ipynb"))


def public_checks(exercise: Path) -> list[str]:
    """The check ids a released exercise calls, read from its code cells."""
    cells = json.loads(exercise.read_text())["cells"]
    code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
    return list(dict.fromkeys(re.findall(r"""\bcheck\(\s*["']([\w.:-]+)["']""", code)))


def digests() -> dict[str, str]:
    paths = [*(PROJECT / "exercises").glob("*.ipynb"), *(PROJECT / "solutions").glob("*.ipynb")]
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in paths}


def mmlab_check(folder: str) -> subprocess.CompletedProcess:
    notebooks = [f"{folder}/{exercise.name}" for exercise in EXERCISES]
    env = {k: v for k, v in os.environ.items() if not k.startswith("MMLAB_")} | {"MMLAB_LEARNER": "grace.hopper"}
    return subprocess.run(
        [sys.executable, "-m", "mmlab", "check", *notebooks, "--jobs", "2"],
        cwd=PROJECT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.fixture(scope="module")
def checked():
    if not EXERCISES:
        pytest.fail("exercises/ has no notebooks to check")
    before = digests()
    runs = {folder: mmlab_check(folder) for folder in ("solutions", "exercises")}
    assert digests() == before, "mmlab check wrote to the notebooks it checked"
    return runs


def test_every_public_check_passes_on_the_solutions(checked):
    run = checked["solutions"]
    assert run.returncode == 0, run.stdout + run.stderr
    ids = [c for exercise in EXERCISES for c in public_checks(exercise)]
    assert ids, "the released exercises call no check"
    for exercise in EXERCISES:
        score = re.search(rf"^{re.escape(exercise.name)}: (\S+) of (\S+) points$", run.stdout, re.MULTILINE)
        assert score and score.group(1) == score.group(2) != "0", exercise.name
    for check_id in ids:
        assert f"✔ {check_id}: passed" in run.stdout
    assert f"Public checks passed: {len(ids)} of {len(ids)} " in run.stdout
    assert "✘" not in run.stdout and "Next: reread" not in run.stdout


def test_no_public_check_passes_on_the_released_exercises(checked):
    run = checked["exercises"]
    assert run.returncode == 1, run.stdout + run.stderr
    ids = [c for exercise in EXERCISES for c in public_checks(exercise)]
    for exercise in EXERCISES:
        assert re.search(rf"^{re.escape(exercise.name)}: 0 of \S+ points$", run.stdout, re.MULTILINE), exercise.name
    for check_id in ids:
        assert f"✘ {check_id}: " in run.stdout
    assert "✔" not in run.stdout
    assert f"Public checks passed: 0 of {len(ids)} " in run.stdout
    assert re.search(r"^Next: reread .*§\d+\.\d+", run.stdout, re.MULTILINE)  # a lecture section to read


@pytest.mark.parametrize("folder", ["solutions", "exercises"])
def test_the_report_says_it_ran_public_checks_only_and_not_the_hidden_ones(checked, folder):
    out = checked[folder].stdout
    assert out.splitlines()[0] == "mmlab check: running copies of your notebooks with the public checks only."
    assert re.search(r"^Hidden checks were not run\b", out, re.MULTILINE)
    assert "hidden check" not in out.split("Hidden checks were not run")[0].lower()  # none reported as run
