"""What ``mmlab grade`` writes into ``--out``: a SQLite gradebook and the files made from it.

::

    OUT/gradebook.sqlite                    every learner's results, one row per check
    OUT/grades.csv                          the same rows: learner, notebook, check, points,
                                            max_points, status, message
    OUT/learners/<learner>/results.json     Gradescope's results format, one per learner
    OUT/learners/<learner>/<notebook>.html  the feedback page of each notebook

Writing a learner replaces that learner's rows and folder and nothing else, so re-running
on the same submissions gives the same files, and results of learners not in this run are
kept. No file holds a timestamp or a timing, for the same reason.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import sqlite3
import tempfile
from pathlib import Path

from .outcomes import NotebookResult

SCHEMA = """
CREATE TABLE IF NOT EXISTS checks (
    learner TEXT NOT NULL, notebook TEXT NOT NULL, position INTEGER NOT NULL, check_id TEXT NOT NULL,
    points REAL NOT NULL, max_points REAL NOT NULL, status TEXT NOT NULL, message TEXT NOT NULL,
    hidden INTEGER NOT NULL, PRIMARY KEY (learner, notebook, check_id));
CREATE TABLE IF NOT EXISTS notebooks (
    learner TEXT NOT NULL, notebook TEXT NOT NULL, status TEXT NOT NULL, score REAL NOT NULL,
    max_score REAL NOT NULL, notes TEXT NOT NULL, PRIMARY KEY (learner, notebook));
"""
CSV_COLUMNS = ("learner", "notebook", "check", "points", "max_points", "status", "message")


def points_text(value: float) -> str:
    return f"{value:g}"


class Gradebook:
    """The output folder of a grading run."""

    def __init__(self, out: Path):
        self.out = out
        out.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(out / "gradebook.sqlite")
        self.db.executescript(SCHEMA)

    def close(self) -> None:
        self.db.close()

    def replace_learner(self, learner: str, results: list[NotebookResult]) -> None:
        """Store ``results`` (all notebooks of ``learner``) in place of the learner's old ones."""
        with self.db:
            self.db.execute("DELETE FROM checks WHERE learner = ?", (learner,))
            self.db.execute("DELETE FROM notebooks WHERE learner = ?", (learner,))
            for result in results:
                self.db.execute(
                    "INSERT INTO notebooks VALUES (?, ?, ?, ?, ?, ?)",
                    (learner, result.notebook, result.status, result.score, result.max_score, "\n".join(result.notes)),
                )
                self.db.executemany(
                    "INSERT INTO checks VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [
                        (learner, result.notebook, n, c.check, c.points, c.max_points, c.status, c.message, c.hidden)
                        for n, c in enumerate(result.checks)
                    ],
                )
        self._write_learner_folder(learner, results)

    def _write_learner_folder(self, learner: str, results: list[NotebookResult]) -> None:
        learners = self.out / "learners"
        learners.mkdir(exist_ok=True)
        fresh = Path(tempfile.mkdtemp(prefix=f".{learner}.", dir=learners))
        (fresh / "results.json").write_text(gradescope_json(results), encoding="utf-8")
        for result in results:
            (fresh / f"{Path(result.notebook).stem}.html").write_text(result.feedback_html, encoding="utf-8")
        fresh.chmod(0o755)
        target = learners / learner
        if target.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{learner}.old.", dir=learners))
            os.replace(target, old / "gone")
            os.replace(fresh, target)
            shutil.rmtree(old)
        else:
            os.replace(fresh, target)

    def write_csv(self) -> Path:
        """Write grades.csv from every row of the gradebook, in a stable order."""
        rows = self.db.execute(
            "SELECT learner, notebook, check_id, points, max_points, status, message FROM checks "
            "ORDER BY learner, notebook, position"
        ).fetchall()
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(CSV_COLUMNS)
        for learner, notebook, check, points, max_points, status, message in rows:
            writer.writerow((learner, notebook, check, points_text(points), points_text(max_points), status, message))
        path = self.out / "grades.csv"
        _write_atomically(path, buffer.getvalue())
        return path


def gradescope_json(results: list[NotebookResult]) -> str:
    """One learner's results in Gradescope's ``results.json`` format.

    Hidden checks get visibility ``after_due_date``; statuses other than passed/failed keep
    their name at the start of the test's output.
    """
    tests = []
    for result in results:
        for c in result.checks:
            tests.append(
                {
                    "name": f"{result.notebook}: {c.check}",
                    "score": c.points,
                    "max_score": c.max_points,
                    "status": "passed" if c.status == "passed" else "failed",
                    "output": c.message if c.status in ("passed", "failed") else f"[{c.status}] {c.message}",
                    "visibility": "after_due_date" if c.hidden else "visible",
                }
            )
    summary = "\n".join(
        f"{r.notebook}: {points_text(r.score)} of {points_text(r.max_score)} points ({r.status})" for r in results
    )
    notes = [f"{r.notebook}: {note}" for r in results for note in r.notes]
    document = {
        "score": sum(r.score for r in results),
        "output": "\n".join([summary, *notes]),
        "visibility": "visible",
        "tests": tests,
        "extra_data": {"notebooks": {r.notebook: r.status for r in results}},
    }
    return json.dumps(document, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def _write_atomically(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, temporary.with_name(path.name))
