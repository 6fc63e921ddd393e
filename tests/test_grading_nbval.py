"""nbval sees checks as the course uses it: solutions pass (stored outputs compared), released
exercises fail every graded check, and a learner's right answers make them pass.

nbval runs in a separate pytest, with the project's own nbval options (pyproject.toml), on
notebooks written to a temporary folder.
"""

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import nbformat
import pytest
from fixtures.grading import corpus
from nbclient import NotebookClient

from mmlab.grading.build import build, build_exercise
from mmlab.grading.notebooks import BEGIN_SOLUTION, END_SOLUTION, dumps

REPO = Path(__file__).resolve().parent.parent
NBVAL_OPTIONS = [
    "--nbval-current-env",
    "--nbval-cell-timeout=60",
    f"--nbval-sanitize-with={REPO / 'tests/nbval-sanitize.cfg'}",
]


@pytest.fixture(autouse=True)
def kernel_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
    monkeypatch.setenv("MMLAB_CHECK_PATH", str(corpus.CHECKS_DIR))
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    for name in ("MMLAB_LEARNER", "MMLAB_GRADED_LEARNER", "MMLAB_GRADE_RESULTS"):
        monkeypatch.delenv(name, raising=False)


def nbval(mode, notebooks, tmp_path):
    """Run nbval on ``notebooks``; return {(notebook name, cell number): passed?} and the failure texts."""
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    report = tmp_path / "nbval.xml"
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_ADDOPTS"}  # CI's --junitxml is not ours
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-p",
        "no:cacheprovider",
        "-c",
        str(tmp_path / "pytest.ini"),
        "--rootdir",
        str(tmp_path),
        mode,
        *NBVAL_OPTIONS,
        f"--junitxml={report}",
        *map(str, notebooks),
    ]
    subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, timeout=300)
    outcomes, failures = {}, {}
    for case in ET.parse(report).getroot().iter("testcase"):
        notebook = ".".join(case.get("classname").split(".")[-2:])  # "<folder>.<name>.ipynb"
        key = (notebook, int(case.get("name").split()[-1]))
        failed = case.find("failure") is not None or case.find("error") is not None
        outcomes[key] = not failed
        if failed:
            failures[key] = "".join(case.itertext())
    return outcomes, failures


def code_cells(nb):
    """{nbval cell number: role} (nbval numbers the code cells from 0)."""
    code = [c for c in nb.cells if c.cell_type == "code"]
    return {n: c.metadata.get("mmlab", {}).get("role") for n, c in enumerate(code)}


def save_all(folder, notebooks):
    folder.mkdir(parents=True, exist_ok=True)
    for name, nb in notebooks.items():
        (folder / name).write_text(dumps(nb), encoding="utf-8")
    return [folder / name for name in notebooks]


def test_solutions_pass_under_nbval_with_their_stored_outputs(tmp_path):
    executed = {}
    for name, nb in corpus.sources().items():
        NotebookClient(nb, kernel_name="python3", timeout=60, resources={"metadata": {"path": str(tmp_path)}}).execute()
        executed[name] = nb
    check_output = executed[corpus.HUGE].cells[3].outputs[0]["text"]
    assert check_output.startswith("✔ fixture-huge-pages passed")
    outcomes, failures = nbval("--nbval", save_all(tmp_path / "solutions", executed), tmp_path)
    assert len(outcomes) == 7 and failures == {}


def test_released_exercises_fail_every_graded_check(tmp_path):
    solutions = corpus.write_sources(tmp_path / "solutions")
    build(solutions, tmp_path / "exercises")
    notebooks = sorted((tmp_path / "exercises").glob("*.ipynb"))
    outcomes, failures = nbval("--nbval-lax", notebooks, tmp_path)
    checks = 0
    for path in notebooks:
        for number, role in code_cells(nbformat.read(path, as_version=4)).items():
            if role == "check":
                checks += 1
                assert outcomes[(path.name, number)] is False
    assert checks == 2
    assert "replace the stub" in failures[(corpus.HUGE, 2)]  # CheckFailed's message reaches nbval


def test_a_learners_right_answers_make_the_exercises_pass(tmp_path):
    notebooks = save_all(tmp_path / "ada", {name: corpus.right(name) for name in corpus.sources()})
    outcomes, failures = nbval("--nbval-lax", notebooks, tmp_path)
    assert len(outcomes) == 7 and failures == {}


EXERCISES = sorted((REPO / "exercises").glob("*.ipynb"))


@pytest.mark.parametrize("exercise", EXERCISES, ids=[p.name for p in EXERCISES])
def test_each_committed_exercise_fails_its_checks_until_answered(exercise, tmp_path, monkeypatch):
    monkeypatch.delenv("MMLAB_CHECK_PATH")  # the course's own checks only
    copy = tmp_path / "exercises" / exercise.name  # nbval names cells by their path under the rootdir
    copy.parent.mkdir()
    copy.write_bytes(exercise.read_bytes())
    outcomes, _ = nbval("--nbval-lax", [copy], tmp_path)
    roles = code_cells(nbformat.read(exercise, as_version=4))
    checks = [n for n, role in roles.items() if role == "check"]
    assert checks, f"{exercise.name} has no check cell"
    assert [outcomes[(exercise.name, n)] for n in checks] == [False] * len(checks)


SOLUTIONS = sorted((REPO / "solutions").glob("*.ipynb"))


@pytest.mark.parametrize("solution", SOLUTIONS, ids=[p.name for p in SOLUTIONS])
def test_each_committed_exercise_passes_with_the_solutions_answers(solution, tmp_path, monkeypatch):
    """A learner who writes the reference answers into the released exercise passes every check."""
    monkeypatch.delenv("MMLAB_CHECK_PATH")
    source = nbformat.read(solution, as_version=4)
    exercise = build_exercise(source, solution.name)
    for mine, reference in zip(exercise.cells, source.cells, strict=True):
        if mine.metadata.get("mmlab", {}).get("role") == "solution":
            lines = reference.source.splitlines()
            mine.source = "\n".join(line for line in lines if line.strip() not in (BEGIN_SOLUTION, END_SOLUTION))
    [copy] = save_all(tmp_path / "learner", {solution.name: exercise})
    outcomes, failures = nbval("--nbval-lax", [copy], tmp_path)
    assert outcomes and failures == {}
