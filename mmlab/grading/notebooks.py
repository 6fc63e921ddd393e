"""The graded cells of a notebook: their markers, roles, ids and checks.

Authors mark notebooks in ``solutions/`` the way nbgrader does:

- ``### BEGIN SOLUTION`` / ``### END SOLUTION`` around the answer (a code or markdown cell);
  the cell becomes a *solution* cell, and the exercise gets a stub in its place;
- ``### BEGIN HIDDEN TESTS`` / ``### END HIDDEN TESTS`` around hidden checks inside a
  *check* cell (a code cell that calls ``check("id", ...)``); the exercise leaves them out.

Each graded cell gets ``metadata.mmlab = {"grade_id": ..., "role": "solution" | "check"}``
in the built exercise, and the grader matches a submission's cells to the source by that id.
An author may set the metadata in ``solutions/``; otherwise it is derived: a check cell is
named after its first check (``check:fork-cow-counts``), and the solution cells before it
after that check too (``answer:fork-cow-counts``, then ``answer:fork-cow-counts:2``, ...).
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass

import nbformat

BEGIN_SOLUTION, END_SOLUTION = "### BEGIN SOLUTION", "### END SOLUTION"
BEGIN_HIDDEN, END_HIDDEN = "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"
CODE_STUB = ("# YOUR CODE HERE", "raise NotImplementedError()")
TEXT_STUB = "YOUR ANSWER HERE"

SOLUTION, CHECK = "solution", "check"
METADATA_KEY = "mmlab"


class MarkupError(ValueError):
    """A notebook in solutions/ whose markers or metadata cannot be built or graded."""


@dataclass(frozen=True)
class GradedCell:
    """A solution or check cell of a source notebook."""

    index: int
    grade_id: str
    role: str
    checks: tuple[str, ...] = ()
    hidden_checks: tuple[str, ...] = ()


def dumps(nb: nbformat.NotebookNode) -> str:
    """The notebook as JSON text, formatted as Jupyter saves it (stable key order, newline at end)."""
    return nbformat.writes(nb) + "\n"


def _regions(lines: list[str], begin: str, end: str, where: str) -> list[tuple[int, int]]:
    """(begin, end) line numbers of each marked region; MarkupError if they do not pair up."""
    regions, start = [], None
    for number, line in enumerate(lines):
        marker = line.strip()
        if marker == begin:
            if start is not None:
                raise MarkupError(f"{where}: {begin} twice without {end} between them")
            start = number
        elif marker == end:
            if start is None:
                raise MarkupError(f"{where}: {end} without {begin} before it")
            regions.append((start, number))
            start = None
    if start is not None:
        raise MarkupError(f"{where}: {begin} is never closed by {end}")
    return regions


def has_marker(source: str, marker: str) -> bool:
    return any(line.strip() == marker for line in source.splitlines())


def strip_solutions(source: str, cell_type: str, where: str) -> str:
    """``source`` with each solution region replaced by the stub, indented like its marker."""
    lines = source.splitlines()
    out, last = [], 0
    for begin, end in _regions(lines, BEGIN_SOLUTION, END_SOLUTION, where):
        out.extend(lines[last:begin])
        indent = lines[begin][: len(lines[begin]) - len(lines[begin].lstrip())]
        out.extend(indent + stub for stub in (CODE_STUB if cell_type == "code" else (TEXT_STUB,)))
        last = end + 1
    out.extend(lines[last:])
    return "\n".join(out)


def split_hidden(source: str, where: str) -> tuple[str, str]:
    """(public part, hidden part) of a check cell's source; the markers belong to neither."""
    lines = source.splitlines()
    regions = _regions(lines, BEGIN_HIDDEN, END_HIDDEN, where)
    hidden_lines = {n for begin, end in regions for n in range(begin, end + 1)}
    public = [line for n, line in enumerate(lines) if n not in hidden_lines]
    hidden = [lines[n] for begin, end in regions for n in range(begin + 1, end)]
    return "\n".join(public).strip("\n"), "\n".join(hidden).strip("\n")


def check_calls(source: str) -> list[str]:
    """The ids of the checks a cell calls (``check("id", ...)``), in order of appearance.

    Cells that do not parse (a learner's half-written code) call no checks.
    """
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    calls = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not node.args:
            continue
        name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", None)
        first = node.args[0]
        if name == "check" and isinstance(first, ast.Constant) and isinstance(first.value, str):
            calls.append((first.lineno, first.col_offset, first.value))
    return [check_id for *_, check_id in sorted(calls)]


def check_answers(source: str) -> list[tuple[str, str]]:
    """(check id, the answer expression's source) of each ``check("id", answer)`` in a check cell.

    The grader asks the notebook's kernel for the value of that expression where the cell
    stands, instead of running the cell. MarkupError if a call names no answer.
    """
    tree = ast.parse(source)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and node.args and _called(node) == "check":
            first = node.args[0]
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                if len(node.args) != 2 or node.keywords:
                    raise MarkupError(f"check({first.value!r}, ...) must take exactly the check id and the answer")
                expression = ast.get_source_segment(source, node.args[1])
                found.append((first.lineno, first.col_offset, first.value, expression))
    return [(check_id, expression) for *_, check_id, expression in sorted(found)]


def _called(node: ast.Call) -> str | None:
    return node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", None)


def cell_text(cell: dict) -> str:
    """A cell's source as one string, whether stored as a string or a list of lines."""
    source = cell.get("source", "")
    return "".join(map(str, source)) if isinstance(source, list) else str(source)


def mmlab_metadata(cell: dict) -> dict:
    """The cell's ``metadata.mmlab`` dict, or an empty dict if absent or malformed."""
    metadata = cell.get("metadata")
    value = metadata.get(METADATA_KEY) if isinstance(metadata, dict) else None
    return value if isinstance(value, dict) else {}


def graded_cells(nb: nbformat.NotebookNode, name: str) -> list[GradedCell]:
    """The solution and check cells of source notebook ``nb``, with ids, in notebook order."""
    found: list[tuple[int, str, str | None, tuple, tuple]] = []
    for index, cell in enumerate(nb.cells):
        where = f"{name}, cell {index}"
        source = cell_text(cell)
        explicit = mmlab_metadata(cell)
        is_solution = has_marker(source, BEGIN_SOLUTION) or has_marker(source, END_SOLUTION)
        checks, hidden_checks = (), ()
        if cell.cell_type == "code":
            public, hidden = split_hidden(source, where)
            checks, hidden_checks = tuple(check_calls(public)), tuple(check_calls(hidden))
        role = explicit.get("role") or (SOLUTION if is_solution else CHECK if checks or hidden_checks else None)
        if role is None:
            continue
        if role == SOLUTION:
            strip_solutions(source, cell.cell_type, where)  # validates the markers
            if checks or hidden_checks:
                raise MarkupError(f"{where}: a solution cell must not call check(); put checks in their own cell")
        elif role == CHECK:
            if is_solution:
                raise MarkupError(f"{where}: a check cell must not contain {BEGIN_SOLUTION}")
            if cell.cell_type != "code" or not (checks or hidden_checks):
                raise MarkupError(f"{where}: a check cell must be a code cell calling check('id', ...)")
        else:
            raise MarkupError(f"{where}: metadata.mmlab.role must be 'solution' or 'check', not {role!r}")
        found.append((index, role, explicit.get("grade_id"), checks, hidden_checks))
    return _with_ids(found, name)


def _with_ids(found: list, name: str) -> list[GradedCell]:
    """Give every graded cell its explicit or derived grade id; MarkupError on duplicates."""
    cells, pending, seen = [], [], {}
    for index, role, explicit, checks, hidden_checks in found:
        if role == SOLUTION:
            pending.append((index, explicit))
            continue
        check_name = (checks + hidden_checks)[0]
        for n, (answer_index, answer_id) in enumerate(pending, start=1):
            derived = f"answer:{check_name}" + (f":{n}" if n > 1 else "")
            cells.append(GradedCell(answer_index, answer_id or derived, SOLUTION))
        pending = []
        cells.append(GradedCell(index, explicit or f"check:{check_name}", CHECK, checks, hidden_checks))
    for n, (answer_index, answer_id) in enumerate(pending, start=1):
        cells.append(GradedCell(answer_index, answer_id or f"answer:{n}", SOLUTION))
    cells.sort(key=lambda c: c.index)
    for cell in cells:
        if not re.fullmatch(r"[^\s]{1,200}", cell.grade_id):
            raise MarkupError(f"{name}, cell {cell.index}: grade_id {cell.grade_id!r} must be one word")
        if cell.grade_id in seen:
            raise MarkupError(f"{name}: cells {seen[cell.grade_id]} and {cell.index} share grade_id {cell.grade_id!r}")
        seen[cell.grade_id] = cell.index
    return cells
