"""``mmlab grade`` over a corpus of good and bad submissions, built in code (fixtures/grading/corpus.py).

One grading run (module fixture) serves most tests; expected statuses are written out here
by hand from what each submission does.
"""

import argparse
import contextlib
import csv
import hashlib
import io
import json
import sqlite3

import pytest
from fixtures.grading import corpus

from mmlab.grading import cli_grade
from mmlab.grading.sandbox import can_contain

PAGES, HUGE = corpus.PAGES, corpus.HUGE
PUBLIC, HIDDEN = "fixture-huge-pages", "fixture-huge-pages-edges"

# (learner, notebook, check) -> status, for every row grades.csv must have.
EXPECTED = {
    ("ada", PAGES, "fixture-pages"): "passed",
    ("ada", HUGE, PUBLIC): "passed",
    ("ada", HUGE, HIDDEN): "passed",
    ("bad-json", PAGES, "fixture-pages"): "unreadable",
    ("bomb", PAGES, "fixture-pages"): "error",
    ("cheater", PAGES, "fixture-pages"): "error",
    ("cheater", HUGE, PUBLIC): "error",
    ("cheater", HUGE, HIDDEN): "error",
    ("exits", PAGES, "fixture-pages"): "not-run",
    ("flood", PAGES, "fixture-pages"): "passed",
    ("forger", PAGES, "fixture-pages"): "failed",
    ("killed", HUGE, PUBLIC): "not-run",
    ("killed", HUGE, HIDDEN): "not-run",
    ("latin1", PAGES, "fixture-pages"): "passed",
    ("loop", PAGES, "fixture-pages"): "error",
    ("markdown", PAGES, "fixture-pages"): "passed",
    ("missing", PAGES, "fixture-pages"): "passed",
    ("no-ids", PAGES, "fixture-pages"): "passed",
    ("no-ids", HUGE, PUBLIC): "passed",
    ("no-ids", HUGE, HIDDEN): "passed",
    ("old-format", PAGES, "fixture-pages"): "passed",
    ("other-id", PAGES, "fixture-pages"): "passed",
    ("stubborn", PAGES, "fixture-pages"): "not-run",
    ("stubs", PAGES, "fixture-pages"): "error",
    ("stubs", HUGE, PUBLIC): "failed",
    ("stubs", HUGE, HIDDEN): "failed",
    ("tamper", PAGES, "fixture-pages"): "failed",
    ("tamper", HUGE, PUBLIC): "failed",
    ("tamper", HUGE, HIDDEN): "failed",
    ("twice", PAGES, "fixture-pages"): "passed",
    ("wrong", PAGES, "fixture-pages"): "failed",
    ("wrong", HUGE, PUBLIC): "passed",
    ("wrong", HUGE, HIDDEN): "failed",
}
POINTS = {"fixture-pages": 2, PUBLIC: 3, HIDDEN: 1}


def grade_args(submissions, out, sources, jobs=2):
    parser = argparse.ArgumentParser()
    cli_grade.configure(parser)
    return parser.parse_args(
        [
            str(submissions),
            "--out",
            str(out),
            "--source",
            str(sources),
            "--jobs",
            str(jobs),
            "--cell-timeout",
            "4",
            "--notebook-timeout",
            "12",
            "--memory-mb",
            "1024",
        ]
    )


def digest(folder):
    return {p.relative_to(folder): hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("MMLAB_CHECK_PATH", str(corpus.CHECKS_DIR))
        sources = corpus.write_sources(root / "course" / "solutions")
        submissions = corpus.write_submissions(root / "submissions", sources)
        before = digest(submissions)
        summary, progress = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(summary), contextlib.redirect_stderr(progress):
            status = cli_grade.run(grade_args(submissions, root / "out", sources))
    return {
        "root": root,
        "out": root / "out",
        "status": status,
        "before": before,
        "submissions": submissions,
        "summary": summary.getvalue(),
        "progress": progress.getvalue(),
    }


def rows(out):
    with open(out / "grades.csv", newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def by_key(out):
    return {(r["learner"], r["notebook"], r["check"]): r for r in rows(out)}


def test_every_submission_gets_its_expected_status(graded):
    assert graded["status"] == 0
    got = by_key(graded["out"])
    statuses = {key: got[key]["status"] for key in EXPECTED if key in got}
    assert statuses == EXPECTED


def test_a_notebook_not_submitted_is_graded_missing_and_costs_no_other_row(graded):
    got = by_key(graded["out"])
    learners = {key[0] for key in EXPECTED}
    for learner in learners:
        for notebook, checks in ((PAGES, ["fixture-pages"]), (HUGE, [PUBLIC, HIDDEN])):
            for check in checks:
                row = got[(learner, notebook, check)]
                if (learner, notebook, check) not in EXPECTED:
                    assert row["status"] == "missing" and row["points"] == "0"
    assert len(got) == 3 * len(learners)
    assert "02-huge-final.ipynb" in got[("missing", HUGE, PUBLIC)]["message"]


def test_points_are_all_or_nothing_per_check(graded):
    for row in rows(graded["out"]):
        assert row["max_points"] == str(POINTS[row["check"]])
        assert row["points"] == (row["max_points"] if row["status"] == "passed" else "0")


def test_messages_say_what_happened(graded):
    got = by_key(graded["out"])

    def message(learner, notebook=PAGES, check="fixture-pages"):
        return got[(learner, notebook, check)]["message"]

    assert "MemoryError" in message("bomb") and "1024 MiB" in message("bomb")
    assert "stopped after 4 s" in message("loop")
    assert "ignored the interrupt" in message("stubborn")
    assert "kernel died" in message("exits") and "os._exit" in message("exits")
    assert "kernel died" in message("killed", HUGE, HIDDEN)
    assert "not valid notebook JSON" in message("bad-json")
    assert "no access to solutions" in message("cheater", HUGE, PUBLIC)
    if can_contain():  # the absolute path is hidden only where the grader can make namespaces
        assert "no access to solutions" in message("cheater")
    assert "NotImplementedError" in message("stubs")
    assert "replace the stub" in message("stubs", HUGE, PUBLIC)
    wrong = message("wrong")
    assert wrong.startswith("✘ fixture-pages failed") and "Expected: the number of 4 KiB pages in" in wrong
    assert "too large" in wrong and "size in KiB" in wrong and "Reread: the fixture lecture" in wrong
    assert "huge_pages_needed(0)" in message("wrong", HUGE, HIDDEN)
    assert "1 hidden check runs" in message("ada", HUGE, PUBLIC)


def test_notes_record_what_was_repaired(graded):
    db = sqlite3.connect(graded["out"] / "gradebook.sqlite")
    notes = dict(db.execute("SELECT learner || '/' || notebook, notes FROM notebooks"))
    statuses = dict(db.execute("SELECT learner || '/' || notebook, status FROM notebooks"))
    db.close()
    assert "not UTF-8" in notes[f"latin1/{PAGES}"]
    assert "format 3" in notes[f"old-format/{PAGES}"]
    assert "markdown cell" in notes[f"markdown/{PAGES}"]
    assert "matched by their position" in notes[f"no-ids/{HUGE}"]
    assert statuses[f"stubborn/{PAGES}"] == "timeout"
    assert statuses[f"exits/{PAGES}"] == "kernel-died"
    assert statuses[f"ada/{PAGES}"] == "graded"


def test_submissions_are_never_modified(graded):
    assert digest(graded["submissions"]) == graded["before"]


def test_gradescope_results_per_learner(graded):
    wrong = json.loads((graded["out"] / "learners" / "wrong" / "results.json").read_text())
    assert wrong["score"] == 3
    tests = {t["name"]: t for t in wrong["tests"]}
    assert tests[f"{HUGE}: {HIDDEN}"]["visibility"] == "after_due_date"
    assert tests[f"{HUGE}: {HIDDEN}"]["status"] == "failed"
    assert tests[f"{HUGE}: {PUBLIC}"] | {"output": ""} == {
        "name": f"{HUGE}: {PUBLIC}",
        "score": 3,
        "max_score": 3,
        "status": "passed",
        "output": "",
        "visibility": "visible",
    }
    loop = json.loads((graded["out"] / "learners" / "loop" / "results.json").read_text())
    assert loop["tests"][0]["output"].startswith("[error] ")


def test_feedback_pages_show_results_but_not_hidden_check_code(graded):
    page = (graded["out"] / "learners" / "wrong" / "02-huge.html").read_text()
    assert "fixture-huge-pages-edges (hidden)" in page and "huge_pages_needed(0)" in page
    assert 'check("fixture-huge-pages-edges"' not in page and "HIDDEN TESTS" not in page
    assert "return n // 2**21 + 1" in page  # the learner's own code is shown
    flood = (graded["out"] / "learners" / "flood" / "01-pages.html").read_text()
    assert "The grader cut this cell" in flood and len(flood) < 1_000_000


def test_the_run_reports_progress_and_ends_with_a_summary_table(graded):
    assert graded["progress"].count("\n") == 40  # one line per learner and notebook (not a terminal)
    assert "[40/40]" in graded["progress"]
    lines = graded["summary"].splitlines()
    assert lines[0].split() == ["notebook", "learners", "mean", "max", "checks", "passed", "problems"]
    pages = next(line for line in lines if line.startswith(PAGES)).split()
    assert pages[1:3] == ["20", "0.9"]  # 9 of the 20 learners passed 2 points: 18 / 20
    assert lines[-1].startswith("Graded 20 learner(s) x 2 notebook(s)")


def test_a_forged_result_line_does_not_count(graded):
    assert by_key(graded["out"])[("forger", PAGES, "fixture-pages")]["points"] == "0"


def test_out_inside_or_equal_to_submissions_is_refused(graded, capsys):
    submissions = graded["submissions"]
    for out in (submissions, submissions / "ada" / "results"):
        args = grade_args(submissions, out, graded["root"] / "course" / "solutions")
        assert cli_grade.run(args) == 2
        assert "inside the submissions folder" in capsys.readouterr().err
    assert not (submissions / "grades.csv").exists() and not (submissions / "ada" / "results").exists()


def test_no_source_notebooks_is_a_clear_error(tmp_path, capsys):
    (tmp_path / "subs" / "ada").mkdir(parents=True)
    args = grade_args(tmp_path / "subs", tmp_path / "out", tmp_path / "nothing")
    assert cli_grade.run(args) == 2
    assert "no notebooks in" in capsys.readouterr().err
