"""Reading a submitted notebook as leniently as can be done honestly.

A submission is only ever read, never written. What the grader needs from it is the list
of cells (type, source, mmlab metadata); everything else (outputs, widget state, odd
metadata) is dropped, so a damaged or tampered file cannot upset the grading run.
Each accommodation (Latin-1 text, an old nbformat, an unknown cell type) becomes a note
for the learner; a file that cannot be read at all gets a status and a message instead.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from .notebooks import cell_text, mmlab_metadata

MAX_BYTES = 20 * 1024 * 1024
MAX_CELLS = 2_000
"""More cells than any exercise needs: a few bytes per cell would otherwise cost the grader
a second and megabytes per thousand cells, in every file it makes of the notebook."""
MISSING, UNREADABLE = "missing", "unreadable"


@dataclass(frozen=True)
class SubmittedCell:
    cell_type: str
    source: str
    mmlab: dict


@dataclass
class Submission:
    """The cells of a submission, or why there are none (``problem`` is (status, message))."""

    cells: list[SubmittedCell] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    problem: tuple[str, str] | None = None


def load(path: Path) -> Submission:
    """Read the submission at ``path``; never raises for a bad file."""
    if not path.is_file():
        others = sorted(p.name for p in path.parent.glob("*.ipynb")) if path.parent.is_dir() else []
        found = f" The folder has: {', '.join(others)}." if others else ""
        return Submission(problem=(MISSING, f"No notebook named {path.name} was submitted.{found}"))
    if path.is_symlink():
        return Submission(
            problem=(UNREADABLE, f"{path.name} is a symbolic link, not a notebook; submit the file itself.")
        )
    raw = path.read_bytes()
    if len(raw) > MAX_BYTES:
        return Submission(
            problem=(
                UNREADABLE,
                f"{path.name} is {len(raw) // 2**20} MiB, over the "
                f"{MAX_BYTES // 2**20} MiB a notebook may have; clear its outputs.",
            )
        )
    notes = []
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        text = raw.decode("latin-1")
        notes.append(
            f"{path.name} is not UTF-8 text (byte {error.start}); it was read as Latin-1, "
            "so some characters may be wrong. Save it from JupyterLab to fix this."
        )
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        return Submission(
            notes=notes,
            problem=(
                UNREADABLE,
                (
                    f"{path.name} is not valid notebook JSON (line {error.lineno}, column {error.colno}: {error.msg}). "
                    "Was it edited outside Jupyter or cut short? Open it in JupyterLab, fix or re-download it, "
                    "and resubmit."
                ),
            ),
        )
    return _from_json(data, path.name, notes)


def _from_json(data: object, name: str, notes: list[str]) -> Submission:
    if not isinstance(data, dict) or not ("cells" in data or "worksheets" in data):
        return Submission(
            notes=notes, problem=(UNREADABLE, f"{name} is JSON but not a Jupyter notebook (it has no cells).")
        )
    version = data.get("nbformat")
    if version != 4:
        try:
            data = nbformat.reads(json.dumps(data), as_version=4)
        except Exception as error:
            return Submission(
                notes=notes,
                problem=(UNREADABLE, f"{name} uses notebook format {version!r}, which could not be converted: {error}"),
            )
        notes.append(f"{name} was in notebook format {version}; it was converted to format 4 for grading.")
    if not isinstance(data.get("cells"), list):
        return Submission(notes=notes, problem=(UNREADABLE, f"{name} is JSON but its cells are not a list of cells."))
    if len(data["cells"]) > MAX_CELLS:
        count = len(data["cells"])
        problem = f"{name} has {count} cells, more than the {MAX_CELLS} a notebook may have; remove the extra cells."
        return Submission(notes=notes, problem=(UNREADABLE, problem))
    cells, skipped = [], []
    for index, cell in enumerate(data["cells"]):
        if not isinstance(cell, dict) or cell.get("cell_type") not in ("code", "markdown", "raw"):
            skipped.append(index)
            continue
        marks = {k: v for k, v in mmlab_metadata(cell).items() if k in ("grade_id", "role") and isinstance(v, str)}
        cells.append(SubmittedCell(cell["cell_type"], cell_text(cell), marks))
    if skipped:  # one note, however many: a file of a million bad cells must not make a million notes
        listed = ", ".join(map(str, skipped[:10])) + (f" and {len(skipped) - 10} more" if len(skipped) > 10 else "")
        notes.append(f"Cells {listed} of {name} are not code, markdown or raw cells; they were skipped.")
    return Submission(cells=cells, notes=notes)
