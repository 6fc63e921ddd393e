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
import os
import socket
import sqlite3
from pathlib import Path

import pytest
from fixtures.grading import corpus

from mmlab.grading import cli_grade
from mmlab.grading.sandbox import sandbox_problem

pytestmark = pytest.mark.skipif(sandbox_problem() is not None, reason=f"no sandbox here: {sandbox_problem()}")

PAGES, HUGE = corpus.PAGES, corpus.HUGE
PUBLIC, HIDDEN = "fixture-huge-pages", "fixture-huge-pages-edges"
BOTH = {(PAGES, "fixture-pages"): "passed", (HUGE, PUBLIC): "passed", (HUGE, HIDDEN): "passed"}


def everything(learner, status="passed"):
    return {(learner, notebook, check): status for notebook, check in BOTH}


# (learner, notebook, check) -> status, for every row grades.csv must have but "missing" ones.
EXPECTED = {
    **everything("ada"),
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
    **everything("no-ids"),
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
    # the red team
    **everything("<img src=x onerror=alert(1)>"),
    **everything("caf\\xe9"),
    ("daemon", PAGES, "fixture-pages"): "passed",
    ("disk", PAGES, "fixture-pages"): "error",
    ("fork-bomb", PAGES, "fixture-pages"): "error",
    ("garbage", PAGES, "fixture-pages"): "unreadable",
    ("garbage", HUGE, PUBLIC): "unreadable",
    ("garbage", HUGE, HIDDEN): "unreadable",
    ("hooks", PAGES, "fixture-pages"): "error",
    ("hooks", HUGE, PUBLIC): "failed",
    ("hooks", HUGE, HIDDEN): "failed",
    ("key", PAGES, "fixture-pages"): "failed",
    ("network", PAGES, "fixture-pages"): "failed",
    **everything("no-checks"),
    ("redefined", PAGES, "fixture-pages"): "failed",
    ("renamed", HUGE, PUBLIC): "passed",
    ("renamed", HUGE, HIDDEN): "passed",
    ("saboteur", PAGES, "fixture-pages"): "failed",
    ("symlink", PAGES, "fixture-pages"): "unreadable",
    ("wrong-exercise", PAGES, "fixture-pages"): "wrong-notebook",
    **everything("linked", "unreadable"),
    ("big-message", PAGES, "fixture-pages"): "error",
    ("display-ids", PAGES, "fixture-pages"): "passed",
    ("forged-data", PAGES, "fixture-pages"): "failed",
    ("garbled", PAGES, "fixture-pages"): "not-run",
    ("liar", PAGES, "fixture-pages"): "failed",
    ("many-cells", PAGES, "fixture-pages"): "passed",
    ("prowler", PAGES, "fixture-pages"): "failed",
    ("sockets", PAGES, "fixture-pages"): "passed",
}
POINTS = {"fixture-pages": 2, PUBLIC: 3, HIDDEN: 1}
CHEATS = ("forger", "hooks", "key", "redefined", "saboteur", "tamper", "network", "forged-data", "garbled", "liar")
CHEATS += ("prowler",)


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
    listener = socket.create_server(("127.0.0.1", 0))
    listener.setblocking(False)
    outside = root / "outside.txt"
    outside.write_text("untouched")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("MMLAB_CHECK_PATH", str(corpus.CHECKS_DIR))
        sources = corpus.write_sources(root / "course" / "solutions")
        subs = root / "submissions"
        targets = {"ada": str(subs / "ada" / PAGES), "grades": str(root / "out" / "grades.csv"), "out": str(outside)}
        submissions = corpus.write_submissions(subs, sources, targets=targets, port=listener.getsockname()[1])
        before = digest(submissions)
        summary, progress = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(summary), contextlib.redirect_stderr(progress):
            status = cli_grade.run(grade_args(submissions, root / "out", sources))
    try:
        listener.accept()
        reached = True
    except BlockingIOError:
        reached = False
    listener.close()
    return {
        "root": root,
        "out": root / "out",
        "status": status,
        "before": before,
        "submissions": submissions,
        "summary": summary.getvalue(),
        "progress": progress.getvalue(),
        "reached": reached,
        "outside": outside,
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
        for notebook, check in BOTH:
            row = got[(learner, notebook, check)]
            if (learner, notebook, check) not in EXPECTED:
                assert row["status"] == "missing" and row["points"] == "0"
    assert len(got) == 3 * len(learners)
    assert "02-huge-final.ipynb" in got[("missing", HUGE, PUBLIC)]["message"]


def test_points_follow_the_status_with_partial_credit_for_functions(graded):
    for row in rows(graded["out"]):
        assert row["max_points"] == str(POINTS[row["check"]])
        if row["status"] == "passed":
            assert row["points"] == row["max_points"]
        elif row["status"] != "failed" or row["check"] == "fixture-pages":
            assert row["points"] == "0", row
    got = by_key(graded["out"])
    assert float(got[("wrong", HUGE, HIDDEN)]["points"]) == pytest.approx(1 / 3)  # right at one of three edges
    assert "1 of 3 inputs right" in got[("wrong", HUGE, HIDDEN)]["message"]


def test_no_cheat_scores_more_than_the_blank_stub(graded):
    got = by_key(graded["out"])
    for learner in CHEATS:
        for notebook, check in BOTH:
            row = got[(learner, notebook, check)]
            stub = got[("stubs", notebook, check)]
            if row["status"] != "missing":
                assert float(row["points"]) <= float(stub["points"]) + (check == HIDDEN), (learner, row)


def test_graded_code_sees_no_key_no_network_and_changes_nothing_outside(graded):
    assert digest(graded["submissions"]) == graded["before"]
    assert graded["outside"].read_text() == "untouched"
    assert not graded["reached"]
    page = (graded["out"] / "learners" / "key" / "01-pages.html").read_text()
    assert "importable: []" in page
    assert "MMLAB_GRADED_VARIANTS" in page and "MMLAB_CHECK_PATH" not in page and "PYTEST" not in page
    assert "no network" in (graded["out"] / "learners" / "network" / "01-pages.html").read_text()
    ada = by_key(graded["out"])
    assert all(ada[("ada", n, c)]["status"] == "passed" for n, c in BOTH)


def test_every_process_a_notebook_started_is_gone(graded):
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        assert b"987654" not in command and b"mmlab-k-" not in command, command


def test_messages_name_the_cause(graded):
    got = by_key(graded["out"])

    def message(learner, notebook=PAGES, check="fixture-pages"):
        return got[(learner, notebook, check)]["message"]

    assert "MemoryError" in message("bomb") and "1024 MiB" in message("bomb")
    assert "stopped after 4 s (the cell time limit)" in message("loop")
    assert "ignored the interrupt" in message("stubborn")
    assert "kernel died" in message("exits")
    assert "kernel died" in message("killed", HUGE, HIDDEN) and "killed" in message("killed", HUGE, HIDDEN)
    assert "BlockingIOError" in message("fork-bomb")
    assert "No space left" in message("disk") or "larger than 64 MiB" in message("disk")
    assert "not valid notebook JSON" in message("bad-json")
    assert "see no files but their own" in message("cheater")
    assert "NotImplementedError" in message("stubs")
    assert "replace the stub" in message("stubs", HUGE, PUBLIC)
    wrong = message("wrong")
    assert wrong.startswith("✘ fixture-pages failed") and "Expected: the number of 4 KiB pages in" in wrong
    assert "too large" in wrong and "size in KiB" in wrong and "Reread: the fixture lecture" in wrong
    assert "huge_pages_needed(0)" in message("wrong", HUGE, HIDDEN)
    assert "1 hidden check runs" in message("ada", HUGE, PUBLIC)
    assert "holds the answers of 02-huge.ipynb" in message("wrong-exercise")
    assert "symbolic link" in message("symlink") and "symbolic link" in message("linked")
    assert "gave the grader no answer" in message("hooks")
    assert "your answer cannot be graded: it is not data the grader can read" in message("forged-data")
    assert "the grader failed on what the notebook sent it (ValueError" in message("garbled")
    assert "gave the grader no answer" in message("big-message") and "larger than 64 MiB" in message("big-message")


def test_notes_record_what_was_repaired(graded):
    db = sqlite3.connect(graded["out"] / "gradebook.sqlite")
    notes = dict(db.execute("SELECT learner || '/' || notebook, notes FROM notebooks"))
    statuses = dict(db.execute("SELECT learner || '/' || notebook, status FROM notebooks"))
    db.close()
    assert "not UTF-8" in notes[f"latin1/{PAGES}"]
    assert "format 3" in notes[f"old-format/{PAGES}"]
    assert "markdown cell" in notes[f"markdown/{PAGES}"]
    assert "matched by their position" in notes[f"no-ids/{HUGE}"]
    assert "02-huge (1).ipynb was graded in its place" in notes[f"renamed/{HUGE}"]
    assert "learner_id('somebody-else')" in notes[f"other-id/{PAGES}"]
    assert statuses[f"stubborn/{PAGES}"] == "timeout"
    assert statuses[f"exits/{PAGES}"] == "kernel-died"
    assert statuses[f"ada/{PAGES}"] == "graded"
    assert statuses[f"garbled/{PAGES}"] == "kernel-died"


def test_gradescope_results_per_learner(graded):
    wrong = json.loads((graded["out"] / "learners" / "wrong" / "results.json").read_text())
    assert wrong["score"] == pytest.approx(3 + 1 / 3)
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
    learners = graded["out"] / "learners"
    page = (learners / "wrong" / "02-huge.html").read_text()
    assert "fixture-huge-pages-edges (hidden)" in page and "huge_pages_needed(0)" in page
    assert 'check("fixture-huge-pages-edges"' not in page and "HIDDEN TESTS" not in page
    assert "return n // 2**21 + 1" in page  # the learner's own code is shown
    flood = (learners / "flood" / "01-pages.html").read_text()
    assert "The grader cut this cell" in flood and len(flood) < 1_000_000
    missing = (learners / "missing" / "02-huge.html").read_text()
    assert "No notebook named 02-huge.ipynb was submitted" in missing
    html = (learners / "<img src=x onerror=alert(1)>" / "01-pages.html").read_text()
    assert "&lt;img src=x onerror=alert(1)&gt;" in html and "<img src=x" not in html
    assert (learners / "caf\\xe9" / "02-huge.html").is_file()


def test_what_a_notebook_outputs_cannot_grow_what_the_grader_keeps(graded):
    learners = graded["out"] / "learners"
    many = (learners / "many-cells" / "01-pages.html").read_text()
    assert "the notebook&#x27;s output passed 2000000 characters" in many and len(many) < 2_500_000
    assert len((learners / "display-ids" / "01-pages.html").read_text()) < 100_000  # one update, not 200 copies
    assert all(len(f.read_bytes()) < 3_000_000 for f in learners.rglob("*.html"))


def test_a_sandbox_finds_no_key_anywhere_and_as_root_cannot_write_beside_its_sockets(graded):
    learners = graded["out"] / "learners"
    assert "found: []" in (learners / "prowler" / "01-pages.html").read_text()
    sockets = (learners / "sockets" / "01-pages.html").read_text()
    if os.geteuid() == 0:  # an ordinary user's kernel owns that folder (see mmlab.grading.worker._close_folder)
        assert "wrote 0 MiB beside the sockets" in sockets and "PermissionError" in sockets


def test_the_run_reports_progress_and_ends_with_a_summary_table(graded):
    learners = len({key[0] for key in EXPECTED})
    assert graded["progress"].count("\n") == 2 * learners  # one line per learner and notebook (not a terminal)
    assert f"[{2 * learners}/{2 * learners}]" in graded["progress"]
    lines = graded["summary"].splitlines()
    assert lines[0].split() == ["notebook", "learners", "mean", "max", "checks", "passed", "problems"]
    passed = sum(status == "passed" for (_, notebook, _), status in EXPECTED.items() if notebook == PAGES)
    pages = next(line for line in lines if line.startswith(PAGES)).split()
    assert pages[1:3] == [str(learners), f"{2 * passed / learners:.1f}"]
    assert lines[-1].startswith(f"Graded {learners} learner(s) x 2 notebook(s)")


def test_out_overlapping_submissions_is_refused(graded, capsys):
    submissions = graded["submissions"]
    for out in (submissions, submissions / "ada" / "results", submissions.parent):
        args = grade_args(submissions, out, graded["root"] / "course" / "solutions")
        assert cli_grade.run(args) == 2
        assert "overlap" in capsys.readouterr().err
    assert not (submissions / "grades.csv").exists() and not (submissions / "ada" / "results").exists()


def test_two_folders_graded_under_one_learner_id_are_a_clear_error(tmp_path, capsys):
    """A folder named with the byte 0xe9 and one named with the text \\xe9 would overwrite each other's grades."""
    (tmp_path / "subs").mkdir()
    os.mkdir(bytes(tmp_path / "subs") + b"/caf\xe9")
    (tmp_path / "subs" / "caf\\xe9").mkdir()
    args = grade_args(tmp_path / "subs", tmp_path / "out", tmp_path / "nothing")
    assert cli_grade.run(args) == 2
    assert "would both be graded as learner 'caf\\\\xe9'; rename one" in capsys.readouterr().err


def test_no_source_notebooks_is_a_clear_error(tmp_path, capsys):
    (tmp_path / "subs" / "ada").mkdir(parents=True)
    args = grade_args(tmp_path / "subs", tmp_path / "out", tmp_path / "nothing")
    assert cli_grade.run(args) == 2
    assert "no notebooks in" in capsys.readouterr().err
