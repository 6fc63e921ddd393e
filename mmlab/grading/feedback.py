"""The feedback page a learner gets for one graded notebook (self-contained HTML).

It shows the score, every check's status and message, and the learner's notebook as it
ran, with outputs. Hidden checks appear only as results: the cells that ran them are left
out, so their code is never shown.
"""

from __future__ import annotations

import html
import re

import nbformat

from .assemble import HIDDEN, PREAMBLE, Slot
from .notebooks import CHECK, SOLUTION
from .outcomes import NotebookResult

ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
STYLE = """
body { font-family: system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; padding: 0 1rem; color: #222; }
table { border-collapse: collapse; width: 100%; }
th, td { border: 1px solid #ccc; padding: .4rem; vertical-align: top; text-align: left; }
pre { white-space: pre-wrap; margin: 0; font-size: .9rem; }
.passed { background: #e8f5e9; } .failed, .error, .timeout { background: #ffebee; }
.not-run, .missing, .unreadable, .grader-error { background: #fff8e1; }
.cell { border-left: 4px solid #90a4ae; margin: 1rem 0; padding: .3rem .8rem; }
.cell.check { border-color: #1565c0; } .output { background: #f5f5f5; margin-top: .4rem; padding: .3rem; }
.note { background: #fff8e1; padding: .5rem; }
"""


def _points(value: float) -> str:
    return f"{value:g}"


def render(result: NotebookResult, slots: list[Slot], ran: nbformat.NotebookNode | None) -> str:
    """The page for ``result``; ``ran`` is the executed notebook (None if it was lost)."""
    e = html.escape
    hidden = sum(c.hidden for c in result.checks)
    parts = [
        "<!DOCTYPE html>",
        f'<html lang="en"><head><meta charset="utf-8"><title>{e(result.notebook)}: {e(result.learner)}</title>',
        f"<style>{STYLE}</style></head><body>",
        f"<h1>{e(result.notebook)}</h1>",
        f"<p>Feedback for <b>{e(result.learner)}</b>: <b>{_points(result.score)} of "
        f"{_points(result.max_score)} points</b>.</p>",
    ]
    if result.status != "graded":
        parts.append(f'<p class="note">Grading status: <b>{e(result.status)}</b>.</p>')
    if hidden:
        parts.append(
            f"<p>{hidden} of the {len(result.checks)} checks are hidden checks: their results are "
            "below, but the code that ran them is not shown.</p>"
        )
    parts += [f'<p class="note">{e(note)}</p>' for note in result.notes]
    parts.append("<table><tr><th>Check</th><th>Status</th><th>Points</th><th>Feedback</th></tr>")
    for c in result.checks:
        name = f"{e(c.check)}{' (hidden)' if c.hidden else ''}"
        parts.append(
            f'<tr class="{e(c.status)}"><td>{name}</td><td>{e(c.status)}</td>'
            f"<td>{_points(c.points)} / {_points(c.max_points)}</td><td><pre>{e(c.message)}</pre></td></tr>"
        )
    parts.append("</table>")
    if slots:
        parts.append("<h2>Your notebook, as it ran</h2>")
        cells = ran.cells if ran is not None and len(ran.cells) == len(slots) else [None] * len(slots)
        for slot, cell in zip(slots, cells, strict=True):
            if slot.role not in (PREAMBLE, HIDDEN):
                parts.append(_cell(slot, cell))
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _cell(slot: Slot, cell: nbformat.NotebookNode | None) -> str:
    e = html.escape
    title = {CHECK: "Check cell (as in the exercise)", SOLUTION: f"Your answer ({slot.grade_id})"}.get(
        slot.role, "Code cell" if slot.cell_type == "code" else "Text cell"
    )
    count = cell.get("execution_count") if cell is not None else None
    prompt = f" [{count}]" if count else ""
    body = [f'<div class="cell {e(slot.role)}"><p><small>{e(title)}{prompt}</small></p><pre>{e(slot.source)}</pre>']
    for output in cell.get("outputs", []) if cell is not None else []:
        text = _output_text(output)
        if text:
            body.append(f'<div class="output"><pre>{e(ANSI.sub("", text))}</pre></div>')
    body.append("</div>")
    return "".join(body)


def _output_text(output: dict) -> str:
    kind = output.get("output_type")
    if kind == "stream":
        return output.get("text", "")
    if kind == "error":
        return "\n".join(output.get("traceback") or []) or f"{output.get('ename')}: {output.get('evalue')}"
    data = output.get("data", {})
    if "text/plain" in data:
        return data["text/plain"]
    return f"[{', '.join(sorted(data))} output, not shown here]" if data else ""
