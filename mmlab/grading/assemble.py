"""Put together the notebook the grader runs: the learner's answers, the source's checks.

From the submission come the answer cells (matched to the source by ``grade_id``) and every
cell the learner added or kept. From the source come the check cells and, when grading, their
hidden checks as a separate cell right after each one. So editing, deleting, duplicating or
retyping a check cell changes nothing: the submission's check cells are dropped and the
source's put in their place, where the learner had them if that is after the answer, else
right after the answer (and the learner's own cells that follow it).

A submission without any grade ids (saved by a tool that drops cell metadata) is matched by
the position of its code cells, with a note saying so.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import nbformat

from . import notebooks
from .notebooks import CHECK, SOLUTION, GradedCell
from .submission import SubmittedCell

PREAMBLE, FREE, HIDDEN, PLACEHOLDER = "preamble", "free", "hidden", "placeholder"
PREAMBLE_SOURCE = "from mmlab.grading import check"


@dataclass
class Slot:
    """One cell of the assembled notebook and where it came from."""

    role: str
    cell_type: str
    source: str
    grade_id: str | None = None
    checks: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        """How feedback names this cell to the learner."""
        if self.role == SOLUTION:
            return f"your answer cell {self.grade_id}"
        first = next((line.strip() for line in self.source.splitlines() if line.strip()), "")
        return f"your cell starting `{first[:60]}`"


@dataclass
class Assembled:
    nb: nbformat.NotebookNode
    slots: list[Slot]
    notes: list[str] = field(default_factory=list)


def assemble(source: nbformat.NotebookNode, name: str, cells: list[SubmittedCell], *, hidden: bool) -> Assembled:
    """The notebook to run for submission ``cells`` of source notebook ``source``.

    With ``hidden``, each check cell is followed by a cell with its hidden checks.
    """
    graded = notebooks.graded_cells(source, name)
    notes: list[str] = []
    ids = _submitted_ids(source, graded, cells, notes)
    slots = _learner_slots(source, graded, cells, ids, notes)
    unmarked = {notebooks.cell_text(c) for i, c in enumerate(source.cells) if i not in {g.index for g in graded}}
    for position, spec in enumerate(graded):
        if spec.role != CHECK:
            continue
        public, secret = notebooks.split_hidden(
            notebooks.cell_text(source.cells[spec.index]), f"{name}, cell {spec.index}"
        )
        restored = []
        if public:
            restored.append(Slot(CHECK, "code", public, spec.grade_id, spec.checks))
        if hidden and secret:
            restored.append(Slot(HIDDEN, "code", secret, f"{spec.grade_id}:hidden", spec.hidden_checks))
        at = _check_position(slots, spec, graded[:position], unmarked)
        at = max(at, _after_own_answers(slots, graded[:position]))
        slots[at:at] = restored
    slots = [s for s in slots if s.role != PLACEHOLDER]
    slots.insert(0, Slot(PREAMBLE, "code", PREAMBLE_SOURCE))
    return Assembled(_notebook(slots), slots, notes)


def _submitted_ids(source, graded: list[GradedCell], cells: list[SubmittedCell], notes: list[str]) -> list:
    """The grade id of each submitted cell: from its metadata, or by position if none has any."""
    if any(c.mmlab.get("grade_id") for c in cells):
        return [c.mmlab.get("grade_id") for c in cells]
    code_ordinal = {}
    for ordinal, index in enumerate(i for i, c in enumerate(source.cells) if c.cell_type == "code"):
        code_ordinal[index] = ordinal
    by_ordinal = {code_ordinal[g.index]: g.grade_id for g in graded if g.index in code_ordinal}
    ids, ordinal = [], 0
    for cell in cells:
        ids.append(by_ordinal.get(ordinal) if cell.cell_type == "code" else None)
        ordinal += cell.cell_type == "code"
    if graded:
        notes.append(
            "The notebook's cells carry no grade ids (was it saved by a tool that drops cell "
            "metadata?), so answer cells were matched by their position among the code cells. "
            "If you added or removed code cells, your answers may have been misread."
        )
    return ids


def _learner_slots(source, graded, cells, ids, notes) -> list[Slot]:
    """The submission's cells as slots: answers by id, check cells as placeholders, the rest free."""
    answers = {g.grade_id: source.cells[g.index].cell_type for g in graded if g.role == SOLUTION}
    checks = {g.grade_id for g in graded if g.role == CHECK}
    slots, seen = [], set()
    for cell, grade_id in zip(cells, ids, strict=True):
        if grade_id in checks or cell.mmlab.get("role") == CHECK:
            if grade_id in checks and grade_id not in seen:
                slots.append(Slot(PLACEHOLDER, "code", "", grade_id))
            seen.add(grade_id)
        elif grade_id in answers and grade_id not in seen:
            seen.add(grade_id)
            if cell.cell_type != answers[grade_id]:
                notes.append(
                    f"Answer cell {grade_id} was turned into a {cell.cell_type} cell; "
                    f"it was graded as a {answers[grade_id]} cell, as in the exercise."
                )
            slots.append(Slot(SOLUTION, answers[grade_id], cell.source, grade_id))
        else:
            if grade_id in answers:
                notes.append(
                    f"Answer cell {grade_id} appears more than once; the first copy was graded "
                    "and the others ran as ordinary cells."
                )
            slots.append(Slot(FREE, cell.cell_type, cell.source))
    for grade_id in answers:
        if grade_id not in seen:
            notes.append(
                f"Answer cell {grade_id} is missing from the notebook (deleted?); the checks that need it cannot pass."
            )
    return slots


def _check_position(slots: list[Slot], spec: GradedCell, before: list[GradedCell], unmarked: set[str]) -> int:
    """Where check cell ``spec`` goes in ``slots`` (consuming its placeholder, if any)."""
    placeholder = next((i for i, s in enumerate(slots) if s.role == PLACEHOLDER and s.grade_id == spec.grade_id), None)
    anchor = _anchor(slots, before)
    if placeholder is not None:
        del slots[placeholder]
        if anchor is None or placeholder > anchor:
            return placeholder
        anchor -= 1
    if anchor is None:
        return next((i for i, s in enumerate(slots) if s.role in (SOLUTION, CHECK)), len(slots))
    at = anchor + 1
    while at < len(slots) and (
        slots[at].role == HIDDEN or (slots[at].role == FREE and slots[at].source not in unmarked)
    ):
        at += 1
    return at


def _after_own_answers(slots: list[Slot], before: list[GradedCell]) -> int:
    """The first position after every answer cell a check checks (the answers since the previous check)."""
    own = []
    for earlier in reversed(before):
        if earlier.role == CHECK:
            break
        own.append(earlier.grade_id)
    positions = [i for i, s in enumerate(slots) if s.role == SOLUTION and s.grade_id in own]
    return max(positions) + 1 if positions else 0


def _anchor(slots: list[Slot], before: list[GradedCell]) -> int | None:
    """The slot of the nearest graded source cell before the check that the notebook has."""
    for earlier in reversed(before):
        for i, slot in enumerate(slots):
            if slot.grade_id == earlier.grade_id and slot.role in (SOLUTION, CHECK):
                return i
    return None


def _notebook(slots: list[Slot]) -> nbformat.NotebookNode:
    cells = []
    for number, slot in enumerate(slots):
        cell = {"cell_type": slot.cell_type, "id": f"cell-{number}", "metadata": {}, "source": slot.source}
        if slot.role in (SOLUTION, CHECK, HIDDEN):
            cell["metadata"][notebooks.METADATA_KEY] = {"grade_id": slot.grade_id, "role": slot.role}
        if slot.cell_type == "code":
            cell.update(outputs=[], execution_count=None)
        cells.append(cell)
    return nbformat.from_dict(
        {
            "cells": cells,
            "metadata": {
                "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
                "language_info": {"name": "python"},
            },
            "nbformat": 4,
            "nbformat_minor": 5,
        }
    )
