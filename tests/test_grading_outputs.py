"""What ``mmlab grade`` writes is idempotent, and re-grading a learner replaces only that learner."""

import csv
import sqlite3

import pytest
from fixtures.grading import corpus

from mmlab.grading.grader import grade
from mmlab.grading.sandbox import Limits

LIMITS = Limits(cell_timeout=10, notebook_timeout=20, memory_mb=1024)


@pytest.fixture
def course(tmp_path, monkeypatch):
    monkeypatch.setenv("MMLAB_CHECK_PATH", str(corpus.CHECKS_DIR))
    sources = corpus.write_sources(tmp_path / "solutions")
    corpus.write_submissions(tmp_path / "submissions", sources, ["ada", "wrong"])
    return tmp_path, sources


def files(out):
    """Every output file's bytes, except the SQLite file (its bytes are not ours to fix)."""
    return {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file() and p.suffix != ".sqlite"}


def csv_rows(out):
    with open(out / "grades.csv", newline="", encoding="utf-8") as f:
        return [tuple(row.values()) for row in csv.DictReader(f)]


def test_regrading_the_same_submissions_rewrites_the_same_files(course):
    root, sources = course
    grade(root / "submissions", root / "out", source=sources, limits=LIMITS, jobs=2, progress=False)
    first = files(root / "out")
    assert {str(p) for p in first} == {
        "grades.csv",
        "learners/ada/results.json",
        "learners/ada/01-pages.html",
        "learners/ada/02-huge.html",
        "learners/wrong/results.json",
        "learners/wrong/01-pages.html",
        "learners/wrong/02-huge.html",
    }
    grade(root / "submissions", root / "out", source=sources, limits=LIMITS, jobs=1, progress=False)
    assert files(root / "out") == first


def test_regrading_one_learner_replaces_only_that_learners_rows(course):
    root, sources = course
    out = root / "out"
    grade(root / "submissions", out, source=sources, limits=LIMITS, progress=False)
    before = csv_rows(out)
    ada_files = {p: b for p, b in files(out).items() if "ada" in str(p)}

    corpus.write_submissions(root / "resubmitted", sources, ["ada"])
    (root / "resubmitted" / "ada").rename(root / "resubmitted" / "wrong")  # wrong now hands in right answers
    grade(root / "resubmitted", out, source=sources, limits=LIMITS, progress=False)

    after = csv_rows(out)
    assert [r for r in after if r[0] == "ada"] == [r for r in before if r[0] == "ada"]
    assert [r[5] for r in after if r[0] == "wrong"] == ["passed", "passed", "passed"]
    assert [r[5] for r in before if r[0] == "wrong"] == ["failed", "passed", "failed"]
    assert {p: b for p, b in files(out).items() if "ada" in str(p)} == ada_files
    db = sqlite3.connect(out / "gradebook.sqlite")
    assert db.execute("SELECT COUNT(*) FROM checks").fetchone() == (6,)
    assert dict(db.execute("SELECT learner, SUM(score) FROM notebooks GROUP BY learner")) == {"ada": 6, "wrong": 6}
    db.close()
