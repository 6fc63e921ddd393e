"""Grade submitted notebooks: ``SUBMISSIONS/<learner>/<notebook>.ipynb`` against ``solutions/``.

For each learner and each assignment (a source notebook), the grader

1. finds the learner's notebook (a browser's ``name (1).ipynb`` too, with a note; never a
   symbolic link) and reads it leniently (``submission``): only read, never written, and
   never placed where graded code runs;
2. assembles the notebook to run: the learner's cells, and the source's check cells after
   the answers they check (``assemble``);
3. runs it (``worker``, one thread per notebook at a time): the notebook's kernel runs in a
   sandbox (``sandbox``), and only its answers come out, as plain data; the learner id is
   the folder's name;
4. judges each answer outside the sandbox, against the answer key (``judge``), turns it into
   points with a message that names the cause of every failure (``outcomes``), and renders
   the feedback page.

Every failure of one submission, down to the grader's own, ends up as a status and a
message in that submission's results; the other learners are graded as usual. The
gradebook is written only here, learner by learner as each completes (``gradebook``), so an
interrupted run keeps what it finished.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import re
import tempfile
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import nbformat

from . import feedback, notebooks, registry, submission, worker
from .assemble import Assembled, assemble
from .build import check_problems, source_notebooks
from .gradebook import Gradebook
from .notebooks import MarkupError
from .outcomes import GRADER_ERROR, UNREADABLE, WRONG_NOTEBOOK, Interpreter, NotebookResult, unrun
from .progress import Progress
from .sandbox import UIDS, Limits

LEARNER_ID = re.compile(r"""learner_id\(\s*["']([^"'\n]{1,100})["']\s*\)""")
RENAMED = re.compile(r"^(?P<stem>.+?)(?: \((?P<n>\d+)\)|-Copy(?P<copy>\d+)| copy(?: (?P<m>\d+))?)$")


class GradingError(ValueError):
    """A problem with the grading run as a whole (its folders or its sources): nothing was graded."""


@dataclass(frozen=True)
class Assignment:
    """One source notebook and the checks it runs, in order."""

    name: str
    source: nbformat.NotebookNode
    checks: tuple[registry.Check, ...]
    grade_ids: frozenset[str] = frozenset()

    @classmethod
    def from_notebook(cls, source: nbformat.NotebookNode, name: str) -> Assignment:
        """The assignment for ``source``; MarkupError if its markers or checks are broken."""
        cells = notebooks.graded_cells(source, name)
        problems = check_problems(source, name, cells)
        if problems:
            raise MarkupError("\n".join(problems))
        ids = [c for cell in cells for c in cell.checks + cell.hidden_checks]
        return cls(name, source, tuple(registry.get_check(c) for c in ids), frozenset(c.grade_id for c in cells))


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
    limits: Limits,
    hidden: bool,
    unsafe: bool,
    notes: tuple[str, ...] = (),
    others: dict[str, Assignment] | None = None,
) -> NotebookResult:
    """Grade the submission at ``path`` (which may be missing or broken); never raises.

    ``hidden`` adds the hidden checks; ``unsafe`` runs the kernel without the sandbox (only
    for one's own notebooks, or where bubblewrap cannot run). ``notes`` go to the feedback.
    """
    checks = [c for c in assignment.checks if hidden or not c.hidden]
    try:
        loaded = submission.load(path)
        notes = (*notes, *loaded.notes)
        if not loaded.problem:
            loaded.problem = _another_exercise(assignment, loaded, path, others or {})
        if loaded.problem:
            status, message = loaded.problem
            result = NotebookResult(learner, assignment.name, status, unrun(checks, status, message), list(notes))
            result.feedback_html = feedback.render(result, [], None)
            return result
        built = assemble(assignment.source, assignment.name, loaded.cells, hidden=hidden)
        declared = declared_learner(loaded.cells)
        if declared and declared != learner:
            notes = (
                *notes,
                f"The notebook says learner_id({declared!r}), but it was graded as {learner!r} (the folder it was "
                f"collected under), so its numbers are {learner!r}'s.",
            )
        with tempfile.TemporaryDirectory(prefix="mmlab-grade-") as scratch:
            result, killed = run_worker(Path(scratch), built, learner=learner, limits=limits, unsafe=unsafe)
            interpreter = Interpreter(built.slots, result, killed=killed, limits=limits)
            specs = {c.id: c for c in checks}
            graded = NotebookResult(
                learner,
                assignment.name,
                interpreter.notebook_status(),
                interpreter.results(specs),
                [*notes, *built.notes],
            )
            graded.feedback_html = feedback.render(graded, built.slots, _executed(Path(scratch) / "executed.ipynb"))
            return graded
    except Exception as error:  # the grader's own fault: report it on this notebook, go on with the rest
        message = f"The grader failed on this notebook ({type(error).__name__}: {error}); please report it."
        result = NotebookResult(learner, assignment.name, GRADER_ERROR, unrun(checks, GRADER_ERROR, message))
        result.feedback_html = feedback.render(result, [], None)
        return result


def _another_exercise(assignment: Assignment, loaded: submission.Submission, path: Path, others: dict):
    """(status, message) when the notebook holds another assignment's answer cells and none of this one's."""
    ids = {c.mmlab.get("grade_id") for c in loaded.cells} - {None}
    if not ids or ids & assignment.grade_ids:
        return None
    for other in others.values():
        if other.name != assignment.name and ids & other.grade_ids:
            return (
                WRONG_NOTEBOOK,
                f"{path.name} holds the answers of {other.name}, not of {assignment.name}: submit each exercise "
                f"notebook under its own name.",
            )
    return None


def run_worker(scratch: Path, built: Assembled, *, learner: str, limits: Limits, unsafe: bool) -> tuple[dict, bool]:
    """Run the assembled notebook in a sandboxed kernel (``worker``): (its result, whether the
    watchdog had to end it)."""
    notebook = scratch / "notebook.ipynb"
    nbformat.write(built.nb, notebook)
    uid = None if unsafe else UIDS.take()
    spec = {
        "notebook": str(notebook),
        "executed": str(scratch / "executed.ipynb"),
        "scratch": str(scratch),
        "learner": learner,
        "checks": {str(i): notebooks.check_answers(s.source) for i, s in enumerate(built.slots) if s.checks},
        "limits": dataclasses.asdict(limits),
        "unsafe": unsafe,
        "uid": uid,
    }
    try:
        result = worker.grade(spec)
    finally:
        UIDS.give_back(uid)
    return result, result.get("killed", False)


def declared_learner(cells) -> str | None:
    """The id a notebook declares with ``learner_id("...")``, read from its source, not run."""
    for cell in cells:
        if cell.cell_type == "code":
            match = LEARNER_ID.search(cell.source)
            if match:
                return match.group(1).strip()
    return None


def _executed(path: Path) -> nbformat.NotebookNode | None:
    """The executed notebook, or None if it was not written."""
    try:
        return nbformat.read(path, as_version=4)
    except Exception:
        return None


@dataclass(frozen=True)
class Learner:
    """One learner folder: the id grades are filed under (valid text, whatever the folder's
    name is made of) and the folder itself."""

    id: str
    folder: Path


def learners_in(submissions: Path) -> list[Learner]:
    """The learner folders of ``submissions``, in id order (hidden and ``__`` folders skipped);
    GradingError if two folders would be graded under one id."""
    found = []
    for path in submissions.iterdir():
        if path.name.startswith((".", "__")) or not (path.is_dir() or path.is_symlink()):
            continue
        text = path.name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        found.append(Learner(text, path))
    found.sort(key=lambda learner: learner.id)
    # Folders b"caf\xe9" (not UTF-8) and "caf\\xe9" get one id: they would overwrite each other's grades.
    for one, other in itertools.pairwise(found):
        if one.id == other.id:
            raise GradingError(
                f"the folders {str(one.folder)!r} and {str(other.folder)!r} would both be graded as learner "
                f"{one.id!r}; rename one of them"
            )
    return found


def find_notebook(folder: Path, name: str) -> tuple[Path, tuple[str, ...]]:
    """The learner's notebook ``name`` in ``folder``: the file itself, else the newest upload a
    browser renamed (``name (1).ipynb``, ``name-Copy1.ipynb``), with a note saying so."""
    exact = folder / name
    if exact.exists() or exact.is_symlink() or not folder.is_dir():
        return exact, ()
    stem = Path(name).stem
    renamed = []
    for path in folder.glob("*.ipynb"):
        match = RENAMED.match(path.stem)
        if match and match.group("stem") == stem and not path.is_symlink():
            renamed.append(path)
    if not renamed:
        return exact, ()
    chosen = max(renamed, key=lambda p: (p.stat().st_mtime, p.name))
    note = f"No {name} was submitted; {chosen.name} was graded in its place (a browser renames repeated downloads)."
    if len(renamed) > 1:
        note += f" Of {', '.join(sorted(p.name for p in renamed))}, the most recently saved was taken."
    return chosen, (note,)


def check_folders(submissions: Path, out: Path) -> None:
    """GradingError unless ``submissions`` is a folder and ``out`` cannot overwrite it."""
    if not submissions.is_dir():
        raise GradingError(f"{submissions} is not a folder of submissions (SUBMISSIONS/<learner>/<notebook>.ipynb)")
    subs, dest = submissions.resolve(), out.resolve()
    if dest == subs or subs in dest.parents or dest in subs.parents:
        raise GradingError(
            f"--out {out} and the submissions folder {submissions} overlap; choose an --out outside it, "
            "so that results are never mixed with (or mistaken for) submissions"
        )


def choose_assignments(assignments: list[Assignment], names: list[str], learners: list[Learner]) -> list[Assignment]:
    """The assignments to grade: those named (``--assignment``), else every one that some
    learner submitted; GradingError if a name is unknown or nothing matches."""
    by_name = {a.name: a for a in assignments}
    by_stem = {Path(a.name).stem: a for a in assignments}
    if names:
        unknown = [n for n in names if n not in by_name and n not in by_stem]
        if unknown:
            raise GradingError(f"no assignment named {', '.join(unknown)}; the assignments are {', '.join(by_name)}")
        return [by_name.get(n) or by_stem[n] for n in dict.fromkeys(names)]
    submitted = [
        a
        for a in assignments
        if any(find_notebook(learner.folder, a.name)[0].exists() for learner in learners if learner.folder.is_dir())
    ]
    if not submitted:
        raise GradingError(
            f"no learner submitted any of {', '.join(by_name)}; "
            "name the assignment with --assignment to grade it anyway"
        )
    return submitted


@dataclass
class GradeRun:
    results: list[NotebookResult]
    learners: list[str]
    assignments: list[str]
    seconds: float


def grade(
    submissions: Path,
    out: Path,
    *,
    source: Path,
    limits: Limits,
    assignments: list[str] = (),
    jobs: int | None = None,
    unsafe: bool = False,
    progress: bool = True,
) -> GradeRun:
    """Grade every learner folder in ``submissions`` against ``source``, writing into ``out``."""
    started = time.monotonic()
    check_folders(submissions, out)
    learners = learners_in(submissions)
    if not learners:
        raise GradingError(f"{submissions} has no learner folders (SUBMISSIONS/<learner>/<notebook>.ipynb)")
    every = load_assignments(source)
    chosen = choose_assignments(every, list(assignments), learners)
    others = {a.name: a for a in every}
    bar = Progress(len(learners) * len(chosen), enabled=progress)
    book = Gradebook(out)
    done: dict[str, list[NotebookResult]] = defaultdict(list)
    results = []
    order = [a.name for a in chosen]
    pool = ThreadPoolExecutor(max_workers=jobs or os.cpu_count() or 1)
    try:
        futures = {
            pool.submit(_grade_one, a, learner, limits, unsafe, others): learner.id
            for learner in learners
            for a in chosen
        }
        for future in as_completed(futures):
            result, learner = future.result(), futures[future]
            done[learner].append(result)
            results.append(result)
            bar.advance(f"{learner}/{result.notebook}: {result.score:g}/{result.max_score:g}")
            if len(done[learner]) == len(chosen):
                book.replace_learner(learner, sorted(done[learner], key=lambda r: order.index(r.notebook)))
    finally:  # also on Ctrl-C: drop what has not started, keep every learner already written
        pool.shutdown(wait=True, cancel_futures=True)
        book.write_csv()
        book.close()
    return GradeRun(results, [learner.id for learner in learners], order, time.monotonic() - started)


def _grade_one(
    assignment: Assignment, learner: Learner, limits: Limits, unsafe: bool, others: dict[str, Assignment]
) -> NotebookResult:
    """Grade one learner's notebook for ``assignment``, refusing what is not theirs to submit."""
    if learner.folder.is_symlink():
        checks = list(assignment.checks)
        message = f"The folder {learner.id} is a symbolic link, not a folder of submissions; it was not read."
        result = NotebookResult(learner.id, assignment.name, UNREADABLE, unrun(checks, UNREADABLE, message))
        result.feedback_html = feedback.render(result, [], None)
        return result
    path, notes = find_notebook(learner.folder, assignment.name)
    return grade_notebook(
        assignment, path, learner=learner.id, limits=limits, hidden=True, unsafe=unsafe, notes=notes, others=others
    )
