"""``solutions/`` -> ``exercises/``: the learner's version of every solution notebook.

For each notebook in ``solutions/`` the exercise has

- every solution region replaced by a stub (``raise NotImplementedError()`` in code,
  ``YOUR ANSWER HERE`` in markdown), as nbgrader does;
- every hidden-check region removed from its check cell;
- the outputs of the solution and check cells, and of every code cell after the first
  solution cell, cleared (they could show answers); earlier outputs (set-up, diagrams) kept;
- ``metadata.mmlab = {"grade_id", "role"}`` on each graded cell, for the grader to match;
- notebook-level widget state dropped.

The result is a pure function of the source: re-running gives byte-identical files.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from . import notebooks, registry
from .learner import ANONYMOUS, variant
from .notebooks import CHECK, METADATA_KEY, SOLUTION, GradedCell, MarkupError

HIDDEN_ONLY_NOTE = "# The hidden checks of this exercise run when your notebook is graded."


def build_exercise(source: nbformat.NotebookNode, name: str) -> nbformat.NotebookNode:
    """The exercise version of source notebook ``source`` (named ``name`` in messages)."""
    nb = copy.deepcopy(source)
    graded = {cell.index: cell for cell in notebooks.graded_cells(nb, name)}
    first_solution = min((c.index for c in graded.values() if c.role == SOLUTION), default=len(nb.cells))
    for index, cell in enumerate(nb.cells):
        where = f"{name}, cell {index}"
        spec = graded.get(index)
        if spec and spec.role == SOLUTION:
            cell.source = notebooks.strip_solutions(notebooks.cell_text(cell), cell.cell_type, where)
        elif spec and spec.role == CHECK:
            public, _ = notebooks.split_hidden(notebooks.cell_text(cell), where)
            cell.source = public or HIDDEN_ONLY_NOTE
        if spec:
            cell.metadata[METADATA_KEY] = {"grade_id": spec.grade_id, "role": spec.role}
        if cell.cell_type == "code" and (spec or index > first_solution):
            cell.outputs = []
            cell.execution_count = None
    nb.metadata.pop("widgets", None)
    return nb


def render_exercise(solution_path: Path) -> str:
    """The text ``mmlab build`` writes for the solution notebook at ``solution_path``."""
    source = nbformat.read(solution_path, as_version=4)
    return notebooks.dumps(build_exercise(source, solution_path.name))


def check_problems(source: nbformat.NotebookNode, name: str, cells: list[GradedCell]) -> list[str]:
    """What is wrong with the checks that ``source`` calls, judged by the registry.

    Every id must be registered; public checks must not be hidden ones and the other way
    round; ``expects`` must fill in from the exercise's variant.
    """
    problems = []
    for cell in cells:
        for check_id, in_hidden in [(c, False) for c in cell.checks] + [(c, True) for c in cell.hidden_checks]:
            where = f"{name}, cell {cell.index}"
            try:
                spec = registry.get_check(check_id)
            except registry.UnknownCheck as unknown:
                problems.append(f"{where}: {unknown}")
                continue
            if spec.hidden != in_hidden:
                region = "inside" if in_hidden else "outside"
                problems.append(
                    f"{where}: check {check_id!r} is registered with hidden={spec.hidden} "
                    f"but called {region} {notebooks.BEGIN_HIDDEN}"
                )
            try:
                spec.expects.format_map(variant(spec.exercise, ANONYMOUS))
            except (KeyError, ValueError, IndexError) as error:
                problems.append(f"{where}: check {check_id!r}: its 'expects' text cannot be filled in: {error!r}")
    return problems


@dataclass
class BuildReport:
    """What a build wrote, left alone and removed, by file name."""

    written: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.written or self.removed)


def source_notebooks(solutions_dir: Path) -> list[Path]:
    """The solution notebooks, in name order (checkpoints excluded)."""
    if not solutions_dir.is_dir():
        return []
    return sorted(p for p in solutions_dir.glob("*.ipynb") if p.is_file())


def build(solutions_dir: Path, exercises_dir: Path, *, dry_run: bool = False) -> BuildReport:
    """Regenerate ``exercises_dir`` from ``solutions_dir``; with ``dry_run``, only report.

    Notebooks in ``exercises_dir`` without a source are removed (the folder is generated).
    Raises MarkupError listing every problem found, before writing anything.
    """
    rendered, problems, owners = {}, [], {}
    for path in source_notebooks(solutions_dir):
        try:
            source = nbformat.read(path, as_version=4)
            cells = notebooks.graded_cells(source, path.name)
            problems += check_problems(source, path.name, cells)
            for check_id in (c for cell in cells for c in cell.checks + cell.hidden_checks):
                if check_id in owners:
                    problems.append(f"{path.name}: check {check_id!r} is already called in {owners[check_id]}")
                owners[check_id] = path.name
            rendered[path.name] = notebooks.dumps(build_exercise(source, path.name))
        except ValueError as error:  # MarkupError, or a file that is not a notebook
            problems.append(str(error) if isinstance(error, MarkupError) else f"{path.name}: {error}")
    if problems:
        raise MarkupError("cannot build the exercises:\n  " + "\n  ".join(problems))
    report = BuildReport()
    for name, text in rendered.items():
        target = exercises_dir / name
        if target.is_file() and target.read_text(encoding="utf-8") == text:
            report.unchanged.append(name)
            continue
        report.written.append(name)
        if not dry_run:
            exercises_dir.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
    for stale in sorted(exercises_dir.glob("*.ipynb")) if exercises_dir.is_dir() else []:
        if stale.name not in rendered:
            report.removed.append(stale.name)
            if not dry_run:
                stale.unlink()
    return report
