"""``mmlab check`` end to end on the course's own notebooks, as issue 9 and INSTRUCTORS.md
promise: on the solutions every public check passes, on the released exercises none does,
the learner's notebooks it checks are never written, and the report says that hidden checks
were not run. The notebooks are checked as a learner has them: copies in a folder of their own.
"""

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

PROJECT = Path(__file__).resolve().parent.parent
EXERCISES = sorted((PROJECT / "exercises").glob("*.ipynb"))


def public_checks(exercise: Path) -> list[str]:
    """The check ids a released exercise calls, read from its code cells."""
    cells = json.loads(exercise.read_text())["cells"]
    code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
    return list(dict.fromkeys(re.findall(r"""\bcheck\(\s*["']([\w.:-]+)["']""", code)))


def digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def mmlab_check(notebooks: list[Path], exercises: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MMLAB_")} | {"MMLAB_LEARNER": "grace.hopper"}
    return subprocess.run(
        [sys.executable, "-m", "mmlab", "check", *notebooks, "--exercises", exercises, "--jobs", "2"],
        cwd=PROJECT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.fixture(scope="module")
def checked(tmp_path_factory):
    """``mmlab check`` on a learner's copy of the solutions and of the released exercises."""
    if not EXERCISES:
        pytest.fail("exercises/ has no notebooks to check")
    mine = tmp_path_factory.mktemp("learner")
    for folder in ("solutions", "exercises"):
        (mine / folder).mkdir()
        for exercise in EXERCISES:
            shutil.copy2(PROJECT / folder / exercise.name, mine / folder / exercise.name)
    before = {folder: digests(mine / folder) for folder in ("solutions", "exercises")}
    runs = {
        folder: mmlab_check(sorted((mine / folder).glob("*.ipynb")), mine / "exercises")
        for folder in ("solutions", "exercises")
    }
    for folder, digest in before.items():
        assert digests(mine / folder) == digest, f"mmlab check wrote to the notebooks in {folder}/"
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
    assert re.search(r"^Next: reread .*(?:§|section )\d+\.\d+", run.stdout, re.MULTILINE)  # a lecture section


@pytest.mark.parametrize("folder", ["solutions", "exercises"])
def test_the_report_says_it_ran_public_checks_only_and_not_the_hidden_ones(checked, folder):
    out = checked[folder].stdout
    assert out.splitlines()[0] == "mmlab check: running copies of your notebooks with the public checks only."
    assert re.search(r"^Hidden checks were not run\b", out, re.MULTILINE)
    assert "hidden check" not in out.split("Hidden checks were not run")[0].lower()  # none reported as run


def test_a_notebook_that_cannot_be_checked_is_not_a_pass(tmp_path):
    mine = tmp_path / "09-mine.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell('check("no-such-check", 1)')]), mine)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MMLAB_")}
    run = subprocess.run(
        [sys.executable, "-m", "mmlab", "check", mine, "--exercises", tmp_path],
        cwd=PROJECT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "09-mine.ipynb cannot be checked" in run.stdout and "there is no check 'no-such-check'" in run.stdout
    assert run.returncode == 1  # not "every public check passed" because there were none to run
