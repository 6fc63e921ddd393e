"""Checks as the course uses them: solutions pass under nbval (stored outputs compared); Run All
of a released exercise shows every check failing, and a learner's right answers make them pass.

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
    for name in ("MMLAB_LEARNER", "MMLAB_GRADED_LEARNER", "MMLAB_GRADING"):
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


def run_all(path: Path) -> list[str]:
    """Run a notebook as Run All does (errors do not stop it): the text each check cell shows."""
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, kernel_name="python3", timeout=120, allow_errors=True).execute()
    shown = []
    for cell in nb.cells:
        if cell.metadata.get("mmlab", {}).get("role") == "check":
            outputs = [o.get("text") or o.get("data", {}).get("text/plain", "") for o in cell.outputs]
            errors = [f"{o.ename}: {o.evalue}" for o in cell.outputs if o.output_type == "error"]
            shown.append("".join(outputs + errors))
    return shown


def test_released_exercises_show_every_failed_check(tmp_path):
    solutions = corpus.write_sources(tmp_path / "solutions")
    build(solutions, tmp_path / "exercises")
    shown = [text for path in sorted((tmp_path / "exercises").glob("*.ipynb")) for text in run_all(path)]
    # a value check after its unanswered stub cannot even name its answer; a function check says what is wrong
    assert shown == ["NameError: name 'answer' is not defined", shown[1]]
    assert shown[1].startswith("✘ fixture-huge-pages failed") and "replace the stub" in shown[1]


def test_a_learners_right_answers_make_the_exercises_pass(tmp_path):
    notebooks = save_all(tmp_path / "ada", {name: corpus.right(name) for name in corpus.sources()})
    outcomes, failures = nbval("--nbval-lax", notebooks, tmp_path)
    assert len(outcomes) == 7 and failures == {}
    assert all(text.startswith("✔") for path in notebooks for text in run_all(path))


EXERCISES = sorted((REPO / "exercises").glob("*.ipynb"))


@pytest.mark.parametrize("exercise", EXERCISES, ids=[p.name for p in EXERCISES])
def test_each_committed_exercise_shows_all_its_checks_failing_until_answered(exercise, monkeypatch):
    """Every check cell of a fresh exercise fails: it shows what is wrong, or the stub left its answer undefined."""
    monkeypatch.delenv("MMLAB_CHECK_PATH")  # the course's own checks only
    shown = run_all(exercise)
    assert shown, f"{exercise.name} has no check cell"
    assert all((t.startswith("✘") and "Reread:" in t) or t.startswith("NameError") for t in shown), shown


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
    shown = run_all(copy)
    assert shown and all(text.startswith("✔") for text in shown), shown
