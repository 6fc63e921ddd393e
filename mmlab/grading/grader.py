"""Grade submitted notebooks: ``SUBMISSIONS/<learner>/<notebook>.ipynb`` against ``solutions/``.

For each learner and each source notebook, the grader

1. reads the submission leniently (``submission``); the original file is never written;
2. assembles the notebook to run: the learner's answer cells, the source's check cells and
   their hidden checks (``assemble``); the source notebooks are read here, in the parent,
   and never copied where the submission runs;
3. runs it in a scratch folder, in its own process, with a per-cell and a whole-notebook
   timeout and a memory limit, with the learner id forced to the folder name (``sandbox``);
4. turns each check's outcome into points (``outcomes``) and renders the feedback page.

Every failure of one submission, down to the grader's own, ends up as a status and a
message in that submission's results; the other learners are graded as usual. Results are
written learner by learner as they complete (``gradebook``), so an interrupted run keeps
what it finished.
"""

from __future__ import annotations

import re
import shutil
import sys
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import nbformat

import mmlab

from . import feedback, notebooks, registry, submission
from .assemble import assemble
from .build import check_problems, source_notebooks
from .gradebook import Gradebook
from .notebooks import MarkupError
from .outcomes import GRADER_ERROR, Interpreter, NotebookResult, unrun
from .progress import Progress
from .sandbox import Limits, RunFiles, new_scratch, run_notebook


class GradingError(ValueError):
    """A problem with the grading run as a whole (its folders or its sources): nothing was graded."""


@dataclass(frozen=True)
class Assignment:
    """One source notebook and the checks it runs, in order."""

    name: str
    source: nbformat.NotebookNode
    checks: tuple[registry.Check, ...]

    @classmethod
    def from_notebook(cls, source: nbformat.NotebookNode, name: str) -> Assignment:
        """The assignment for ``source``; MarkupError if its markers or checks are broken."""
        cells = notebooks.graded_cells(source, name)
        problems = check_problems(source, name, cells)
        if problems:
            raise MarkupError("\n".join(problems))
        ids = [c for cell in cells for c in cell.checks + cell.hidden_checks]
        return cls(name, source, tuple(registry.get_check(c) for c in ids))


def load_assignments(source_dir: Path) -> list[Assignment]:
    paths = source_notebooks(source_dir)
    if not paths:
        raise GradingError(f"there are no notebooks in {source_dir} to grade against (use --source DIR)")
    try:
        return [Assignment.from_notebook(nbformat.read(p, as_version=4), p.name) for p in paths]
    except (MarkupError, ValueError) as error:
        raise GradingError(f"the source notebooks in {source_dir} cannot be graded against:\n{error}") from None


def grade_notebook(
    assignment: Assignment,
    path: Path,
    *,
    learner: str,
    forced_learner: bool,
    limits: Limits,
    hidden: bool,
    hide: tuple[Path, ...] = (),
) -> NotebookResult:
    """Grade the submission at ``path`` (which may be missing or broken); never raises.

    ``forced_learner`` fixes the learner id the checks see to ``learner`` (the grader does;
    ``mmlab check`` lets the notebook's own id stand). ``hidden`` adds the hidden checks.
    """
    checks = [c for c in assignment.checks if hidden or not c.hidden]
    try:
        loaded = submission.load(path)
        if loaded.problem:
            status, message = loaded.problem
            return NotebookResult(learner, assignment.name, status, unrun(checks, status, message), loaded.notes)
        built = assemble(assignment.source, assignment.name, loaded.cells, hidden=hidden)
        files = new_scratch()
        try:
            nbformat.write(built.nb, files.notebook)
            report = run_notebook(files, limits, learner=learner if forced_learner else None, hide=hide)
            interpreter = Interpreter(built.slots, files, report, limits)
            specs = {c.id: c for c in checks}
            result = NotebookResult(
                learner,
                assignment.name,
                interpreter.notebook_status(),
                interpreter.results(specs),
                loaded.notes + built.notes,
            )
            result.feedback_html = feedback.render(result, built.slots, _executed(files))
            return result
        finally:
            shutil.rmtree(files.scratch, ignore_errors=True)
    except Exception as error:  # the grader's own fault: report it on this notebook, go on with the rest
        message = f"The grader failed on this notebook ({type(error).__name__}: {error}); please report it."
        return NotebookResult(learner, assignment.name, GRADER_ERROR, unrun(checks, GRADER_ERROR, message))


def _executed(files: RunFiles) -> nbformat.NotebookNode | None:
    """The executed notebook, with run-specific paths made stable, or None if it was not written."""
    try:
        text = files.executed.read_text(encoding="utf-8")
    except (FileNotFoundError, UnicodeDecodeError):
        return None
    text = re.sub(r"ipykernel_\d+", "ipykernel", text.replace(str(files.scratch), "<scratch>"))
    try:
        return nbformat.reads(text, as_version=4)
    except Exception:
        return None


def private_paths(source_dir: Path) -> tuple[Path, ...]:
    """The source folder and the git folder of its repository: hidden from submissions.

    A path that holds mmlab itself or the Python installation is left visible, since the
    kernel needs it.
    """
    source_dir = source_dir.resolve()
    paths = [source_dir]
    for folder in (source_dir, *source_dir.parents):
        if (folder / ".git").is_dir():
            paths.append(folder / ".git")
            break
    needed = [Path(mmlab.__file__).resolve().parent, Path(sys.prefix).resolve()]
    return tuple(p for p in paths if not any(n == p or p in n.parents for n in needed))


def learners_in(submissions: Path) -> list[str]:
    """The learner folders of ``submissions``, in name order (hidden and ``__`` folders skipped)."""
    return sorted(p.name for p in submissions.iterdir() if p.is_dir() and not p.name.startswith((".", "__")))


def check_folders(submissions: Path, out: Path) -> None:
    """GradingError unless ``submissions`` is a folder and ``out`` cannot overwrite it."""
    if not submissions.is_dir():
        raise GradingError(f"{submissions} is not a folder of submissions (SUBMISSIONS/<learner>/<notebook>.ipynb)")
    subs, dest = submissions.resolve(), out.resolve()
    if dest == subs or subs in dest.parents:
        raise GradingError(
            f"--out {out} is inside the submissions folder {submissions}; choose a folder outside it, "
            "so that results are never mixed with (or mistaken for) submissions"
        )
    if dest / "learners" == subs or (dest / "learners") in subs.parents:
        raise GradingError(
            f"the submissions folder {submissions} is where results go ({out}/learners); choose another --out"
        )


@dataclass
class GradeRun:
    results: list[NotebookResult]
    learners: list[str]
    seconds: float


def grade(
    submissions: Path,
    out: Path,
    *,
    source: Path,
    limits: Limits,
    jobs: int = 1,
    progress: bool = True,
) -> GradeRun:
    """Grade every learner folder in ``submissions`` against ``source``, writing into ``out``."""
    started = time.monotonic()
    check_folders(submissions, out)
    assignments = load_assignments(source)
    learners = learners_in(submissions)
    if not learners:
        raise GradingError(f"{submissions} has no learner folders (SUBMISSIONS/<learner>/<notebook>.ipynb)")
    hide = private_paths(source)
    bar = Progress(len(learners) * len(assignments), enabled=progress)
    book = Gradebook(out)
    done: dict[str, list[NotebookResult]] = defaultdict(list)
    results = []
    order = [a.name for a in assignments]
    pool = ThreadPoolExecutor(max_workers=max(1, jobs))
    try:
        futures = {
            pool.submit(
                grade_notebook,
                a,
                submissions / learner / a.name,
                learner=learner,
                forced_learner=True,
                limits=limits,
                hidden=True,
                hide=hide,
            ): learner
            for learner in learners
            for a in assignments
        }
        for future in as_completed(futures):
            result, learner = future.result(), futures[future]
            done[learner].append(result)
            results.append(result)
            bar.advance(f"{learner}/{result.notebook}: {result.score:g}/{result.max_score:g}")
            if len(done[learner]) == len(assignments):
                book.replace_learner(learner, sorted(done[learner], key=lambda r: order.index(r.notebook)))
    finally:  # also on Ctrl-C: drop what has not started, keep every learner already written
        pool.shutdown(wait=True, cancel_futures=True)
        book.write_csv()
        book.close()
    return GradeRun(results, learners, time.monotonic() - started)
