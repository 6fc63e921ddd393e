"""What the grader runs: the learner's answers and own cells, the source's checks (no kernel here)."""

import json

import nbformat
import pytest
from fixtures.grading import corpus

from mmlab.grading import submission
from mmlab.grading.assemble import PREAMBLE_SOURCE, assemble
from mmlab.grading.notebooks import dumps

PUBLIC_CHECK = 'check("fixture-huge-pages", huge_pages_needed)'
HIDDEN_CHECK = 'check("fixture-huge-pages-edges", huge_pages_needed)'
ANSWER = corpus.RIGHT[corpus.HUGE][corpus.HUGE_ANSWER]


def run_order(nb, tmp_path, hidden=True):
    """The sources of the cells the grader would run for submission ``nb``."""
    path = tmp_path / corpus.HUGE
    path.write_text(dumps(nb), encoding="utf-8")
    loaded = submission.load(path)
    built = assemble(corpus.sources()[corpus.HUGE], corpus.HUGE, loaded.cells, hidden=hidden)
    return [cell.source for cell in built.nb.cells], built.notes


def learner_cell(source, cell_id):
    return nbformat.v4.new_code_cell(source, id=cell_id)


EXPECTED = [PREAMBLE_SOURCE, "# Huge pages (fixture)", corpus.IMPORTS, ANSWER, PUBLIC_CHECK, HIDDEN_CHECK]


def test_a_right_submission_runs_with_its_hidden_check_after_the_public_one(tmp_path):
    assert run_order(corpus.right(corpus.HUGE), tmp_path) == (EXPECTED, [])


def test_without_hidden_checks_only_the_public_check_runs(tmp_path):
    assert run_order(corpus.right(corpus.HUGE), tmp_path, hidden=False)[0] == EXPECTED[:-1]


@pytest.mark.parametrize("tampering", ["edit", "delete", "duplicate", "markdown", "move-before-answer"])
def test_tampering_with_the_check_cell_changes_nothing(tmp_path, tampering):
    nb = corpus.right(corpus.HUGE)
    position = next(i for i, c in enumerate(nb.cells) if c.metadata.get("mmlab", {}).get("role") == "check")
    check_cell = nb.cells[position]
    if tampering == "edit":
        check_cell.source = "pass  # the check is gone"
    elif tampering == "delete":
        del nb.cells[position]
    elif tampering == "duplicate":
        nb.cells.insert(0, nbformat.from_dict({**check_cell, "id": "copy"}))
        nb.cells.append(nbformat.from_dict({**check_cell, "id": "copy2"}))
    elif tampering == "markdown":
        nb.cells[position] = nbformat.v4.new_markdown_cell(check_cell.source, id="md", metadata=check_cell.metadata)
    else:
        nb.cells.insert(1, nb.cells.pop(position))
    assert run_order(nb, tmp_path)[0] == EXPECTED


def test_the_learners_own_cells_run_where_they_put_them_and_before_the_check(tmp_path):
    nb = corpus.right(corpus.HUGE)
    nb.cells.insert(3, learner_cell("helper = 1", "mine"))  # after the answer, before the check
    nb.cells.insert(2, learner_cell("import math", "early"))
    del nb.cells[-1]  # check deleted: it is put back after the answer and the learner's helper
    sources, _ = run_order(nb, tmp_path)
    assert sources == [
        PREAMBLE_SOURCE,
        "# Huge pages (fixture)",
        corpus.IMPORTS,
        "import math",
        ANSWER,
        "helper = 1",
        PUBLIC_CHECK,
        HIDDEN_CHECK,
    ]


def test_a_deleted_answer_and_a_duplicated_one_are_noted(tmp_path):
    nb = corpus.right(corpus.HUGE)
    answer = next(c for c in nb.cells if c.metadata.get("mmlab", {}).get("role") == "solution")
    nb.cells.append(nbformat.from_dict({**answer, "id": "again", "source": "x = 2"}))
    sources, notes = run_order(nb, tmp_path)
    assert sources[-1] == "x = 2" and "appears more than once" in notes[0]
    nb.cells = [c for c in nb.cells if c.metadata.get("mmlab", {}).get("role") != "solution"]
    sources, notes = run_order(nb, tmp_path)
    assert ANSWER not in sources and PUBLIC_CHECK in sources
    assert "missing from the notebook" in notes[0]


def test_without_grade_ids_answers_are_matched_by_code_cell_position_with_a_note(tmp_path):
    nb = corpus.right(corpus.HUGE)
    for cell in nb.cells:
        cell.metadata = {}
    nb.cells[-1].source = "print('my own check')"  # the check cell, unrecognisable: replaced all the same
    sources, notes = run_order(nb, tmp_path)
    assert sources == EXPECTED
    assert "matched by their position" in notes[0]


def test_the_source_solution_never_enters_the_run(tmp_path):
    sources, _ = run_order(corpus.exercise(corpus.HUGE), tmp_path)
    text = "\n".join(sources)
    assert "NotImplementedError" in text and "2 * 1024 * 1024" not in text


def test_odd_json_in_a_notebook_is_tolerated_and_noted(tmp_path):
    nb = json.loads(dumps(corpus.right(corpus.HUGE)))
    nb["cells"][0]["metadata"]["mmlab"] = {"grade_id": ["not", "text"], "role": 3}
    nb["cells"][1]["source"] = ["x = ", 1, "\n"]
    nb["cells"] += ["not a cell", {"cell_type": "heading", "source": "old"}]
    path = tmp_path / corpus.HUGE
    path.write_text(json.dumps(nb), encoding="utf-8")
    loaded = submission.load(path)
    assert loaded.problem is None
    assert loaded.cells[0].mmlab == {} and loaded.cells[1].source == "x = 1\n"
    assert loaded.notes == [f"Cells 4, 5 of {corpus.HUGE} are not code, markdown or raw cells; they were skipped."]


def test_many_bad_cells_make_one_note_and_too_many_cells_or_cells_not_a_list_are_unreadable(tmp_path):
    """A small file must not make the grader build (and render, and store) one note, or one cell, per entry."""
    path = tmp_path / corpus.HUGE
    path.write_text(json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [0] * 1500}))
    loaded = submission.load(path)
    assert loaded.cells == [] and len(loaded.notes) == 1
    assert loaded.notes[0].startswith(f"Cells 0, 1, 2, 3, 4, 5, 6, 7, 8, 9 and 1490 more of {corpus.HUGE} are not")
    path.write_text(json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [0] * 10**6}))
    status, message = submission.load(path).problem
    assert status == "unreadable" and "has 1000000 cells, more than the 2000" in message
    path.write_text(json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": "x" * 1000}))
    status, message = submission.load(path).problem
    assert status == "unreadable" and message == f"{corpus.HUGE} is JSON but its cells are not a list of cells."
