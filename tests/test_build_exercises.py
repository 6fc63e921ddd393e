"""``mmlab build``: solutions/ -> exercises/, and the test that the committed exercises/ is current."""

import argparse
from pathlib import Path

import nbformat
import pytest
from fixtures.grading import corpus

from mmlab.grading import cli_build
from mmlab.grading.build import build, build_exercise, render_exercise, source_notebooks
from mmlab.grading.notebooks import MarkupError, dumps, graded_cells

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def fixture_checks(monkeypatch):
    monkeypatch.setenv("MMLAB_CHECK_PATH", str(corpus.CHECKS_DIR))


def output(text):
    return nbformat.v4.new_output("stream", name="stdout", text=text)


def rich_source():
    """A source notebook with outputs everywhere and a markdown answer."""
    nb = corpus.sources()[corpus.HUGE]
    setup = nb.cells[1]
    setup.outputs, setup.execution_count = [output("set-up done\n")], 1
    answer, check_cell = nb.cells[2], nb.cells[3]
    answer.outputs, answer.execution_count = [output("the answer is 42\n")], 2
    check_cell.outputs, check_cell.execution_count = [output("✔ passed\n")], 3
    later = nbformat.v4.new_code_cell("print(huge_pages_needed(1))", id="later")
    later.outputs, later.execution_count = [output("1\n")], 4
    prose = nbformat.v4.new_markdown_cell(
        "Why?\n\n### BEGIN SOLUTION\nBecause huge pages are 2 MiB.\n### END SOLUTION", id="why"
    )
    nb.cells += [later, prose]
    nb.metadata["widgets"] = {"state": "may show answers"}
    return nb


def test_solutions_become_stubs_and_hidden_checks_disappear():
    exercise = build_exercise(rich_source(), "huge.ipynb")
    sources = [cell.source for cell in exercise.cells]
    assert sources[2] == "def huge_pages_needed(nbytes):\n    # YOUR CODE HERE\n    raise NotImplementedError()"
    assert sources[3] == 'check("fixture-huge-pages", huge_pages_needed)'
    assert sources[5] == "Why?\n\nYOUR ANSWER HERE"
    text = dumps(exercise)
    for secret in ("BEGIN", "END", "fixture-huge-pages-edges", "2 * 1024 * 1024", "Because huge pages"):
        assert secret not in text


def test_outputs_that_could_leak_answers_are_cleared_and_the_rest_kept():
    exercise = build_exercise(rich_source(), "huge.ipynb")
    kept = {cell.id: (cell.get("outputs"), cell.get("execution_count")) for cell in exercise.cells}
    assert kept["c0"] == ([output("set-up done\n")], 1)  # before any answer: kept
    for cell_id in ("c1", "c2", "later"):  # the answer, its check, and everything after
        assert kept[cell_id] == ([], None)
    assert "widgets" not in exercise.metadata


def test_graded_cells_carry_stable_ids_in_their_metadata():
    exercise = build_exercise(rich_source(), "huge.ipynb")
    marks = [cell.metadata.get("mmlab") for cell in exercise.cells]
    assert marks == [
        None,
        None,
        {"grade_id": "answer:fixture-huge-pages", "role": "solution"},
        {"grade_id": "check:fixture-huge-pages", "role": "check"},
        None,
        {"grade_id": "answer:1", "role": "solution"},
    ]


def test_explicit_grade_ids_win_and_duplicates_are_refused():
    nb = corpus.sources()[corpus.PAGES]
    nb.cells[3].metadata["mmlab"] = {"grade_id": "pages-answer"}
    assert [c.grade_id for c in graded_cells(nb, "p")] == ["pages-answer", "check:fixture-pages"]
    nb.cells[3].metadata["mmlab"] = {"grade_id": "check:fixture-pages"}
    with pytest.raises(MarkupError, match="share grade_id 'check:fixture-pages'"):
        graded_cells(nb, "p")


@pytest.mark.parametrize(
    "source, problem",
    [
        ("### BEGIN SOLUTION\nx = 1", "never closed"),
        ("x = 1\n### END SOLUTION", "without ### BEGIN SOLUTION before it"),
        ("### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION", "twice"),
        ('### BEGIN SOLUTION\nx = 1\n### END SOLUTION\ncheck("fixture-pages", x)', "must not call check()"),
    ],
)
def test_broken_markers_are_refused_with_the_cell_named(source, problem):
    nb = corpus.sources()[corpus.PAGES]
    nb.cells[3].source = source
    with pytest.raises(MarkupError, match=problem) as raised:
        build_exercise(nb, "p.ipynb")
    assert "p.ipynb, cell 3" in str(raised.value)


def write(folder, name, nb):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(dumps(nb), encoding="utf-8")


@pytest.mark.parametrize(
    "change, problem",
    [
        ('check("fixture-pagez", answer)', "there is no check 'fixture-pagez'. Did you mean 'fixture-pages'?"),
        ('check("fixture-huge-pages-edges", answer)', "registered with hidden=True but called outside"),
    ],
)
def test_build_checks_every_check_id_against_the_registry(tmp_path, change, problem):
    nb = corpus.sources()[corpus.PAGES]
    nb.cells[4].source = change
    write(tmp_path / "solutions", "p.ipynb", nb)
    with pytest.raises(MarkupError, match=problem):
        build(tmp_path / "solutions", tmp_path / "exercises")
    assert not (tmp_path / "exercises").exists()


def test_build_is_deterministic_and_removes_exercises_without_a_source(tmp_path):
    solutions = corpus.write_sources(tmp_path / "solutions")
    exercises = tmp_path / "exercises"
    write(exercises, "00-old.ipynb", corpus.exercise(corpus.PAGES))
    report = build(solutions, exercises)
    assert report.written == [corpus.PAGES, corpus.HUGE] and report.removed == ["00-old.ipynb"]
    first = {p.name: p.read_bytes() for p in exercises.iterdir()}
    assert sorted(first) == [corpus.PAGES, corpus.HUGE]
    again = build(solutions, exercises)
    assert again.unchanged == [corpus.PAGES, corpus.HUGE] and not again.changed
    assert {p.name: p.read_bytes() for p in exercises.iterdir()} == first
    assert first[corpus.PAGES].endswith(b"}\n") and b'\n "nbformat": 4,' in first[corpus.PAGES]


def run_cli(*argv):
    parser = argparse.ArgumentParser()
    cli_build.configure(parser)
    return cli_build.run(parser.parse_args(argv))


def test_cli_check_fails_on_a_stale_exercise_and_passes_after_a_build(tmp_path, capsys):
    solutions = corpus.write_sources(tmp_path / "solutions")
    exercises = tmp_path / "exercises"
    args = ("--solutions", str(solutions), "--exercises", str(exercises))
    assert run_cli(*args, "--check") == 1
    assert "is stale: run `mmlab build`" in capsys.readouterr().err
    assert not exercises.exists()
    assert run_cli(*args) == 0
    assert run_cli(*args, "--check") == 0
    assert "2 exercise notebook(s) already up to date" in capsys.readouterr().out
    assert run_cli("--solutions", str(tmp_path / "nope")) == 2


# --- the committed exercises ---------------------------------------------------------------
def test_committed_exercises_are_what_mmlab_build_writes():
    """exercises/ holds exactly the build of every notebook in solutions/, byte for byte."""
    solutions = source_notebooks(REPO / "solutions")
    expected = {path.name: render_exercise(path) for path in solutions}
    committed = {p.name: p.read_text(encoding="utf-8") for p in sorted((REPO / "exercises").glob("*.ipynb"))}
    stale = sorted(name for name in expected.keys() | committed.keys() if expected.get(name) != committed.get(name))
    assert stale == [], f"exercises/ is stale for {stale}: run `mmlab build` and commit exercises/"
