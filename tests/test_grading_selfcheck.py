"""``mmlab check``: a learner's own notebooks, public checks only, on copies."""

import argparse
import hashlib

import nbformat
import pytest
from fixtures.grading import corpus

from mmlab.grading import cli_check
from mmlab.grading.build import build


@pytest.fixture
def course(tmp_path, monkeypatch):
    monkeypatch.setenv("MMLAB_CHECK_PATH", str(corpus.CHECKS_DIR))
    monkeypatch.setenv("MMLAB_LEARNER", "ada")
    build(corpus.write_sources(tmp_path / "solutions"), tmp_path / "exercises")
    return tmp_path


def run(*argv):
    parser = argparse.ArgumentParser()
    cli_check.configure(parser)
    return cli_check.run(parser.parse_args([str(a) for a in argv]))


def test_a_learner_sees_what_passes_what_to_reread_and_that_hidden_checks_did_not_run(course, capsys):
    mine = course / "mine"
    corpus.save(mine, corpus.PAGES, corpus.right(corpus.PAGES))
    wrong = corpus.with_answer(corpus.HUGE, "def huge_pages_needed(n):\n    return n // 2**21")
    wrong.cells[-1].source = "pass  # I deleted the check by mistake"
    corpus.save(mine, corpus.HUGE, wrong)
    before = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in mine.iterdir()}

    status = run(mine / corpus.PAGES, mine / corpus.HUGE, "--exercises", course / "exercises", "--jobs", 2)

    out, err = capsys.readouterr()
    assert status == 1 and err == ""
    assert "public checks only" in out.splitlines()[0]
    assert "01-pages.ipynb: 2 of 2 points" in out and "✔ fixture-pages: passed, 2/2" in out
    assert "✘ fixture-huge-pages: failed, 0/3" in out  # the deleted check cell was restored
    assert "What is wrong: huge_pages_needed(" in out and "which is too small" in out
    assert "fixture-huge-pages-edges" not in out
    assert "Public checks passed: 1 of 2 (2 of 5 points)." in out
    assert "Hidden checks were not run (1 of them)" in out
    assert out.rstrip().endswith("Next: reread the fixture lecture, section 2 'Huge pages'.")
    assert {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in mine.iterdir()} == before


def test_by_default_the_exercises_folder_is_checked(course, capsys, monkeypatch):
    monkeypatch.chdir(course)
    assert run() == 1  # the released stubs fail
    out = capsys.readouterr().out
    assert "01-pages.ipynb: 0 of 2 points" in out and "02-huge.ipynb: 0 of 3 points" in out
    assert "NotImplementedError" in out


def test_by_default_the_learners_own_copies_are_checked_where_they_exist(course, capsys, monkeypatch):
    monkeypatch.chdir(course)
    mine = course / "my-work" / "exercises"
    mine.mkdir(parents=True)
    (mine / "02-huge.ipynb").write_text(nbformat.writes(corpus.right("02-huge.ipynb")), encoding="utf-8")
    assert run() == 0
    out = capsys.readouterr().out
    assert "02-huge.ipynb: 3 of 3 points" in out and "01-pages.ipynb" not in out


def test_nothing_to_check_is_a_clear_error(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert run() == 2
    assert "no notebooks to check" in capsys.readouterr().err
    assert run(tmp_path / "nope.ipynb") == 2
    assert "no such notebook" in capsys.readouterr().err
