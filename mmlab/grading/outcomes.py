"""Turn what a run left behind into one result per check, with a status and a message.

The worker's cell log says which cells started and ended and how; the checks' results file
says what each check concluded. A check counts only if its result was written while its own
(restored) check cell ran, so a learner calling ``check`` elsewhere changes nothing. A check
that left no result gets a status that says why: its cell raised something else (``error``),
ran out of time (``timeout``), or never ran because the kernel died or time ran out earlier
(``not-run``), with the reason, and the error of the learner's cell that probably caused it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from .assemble import FREE, HIDDEN, Slot
from .checking import ERROR, FAILED, PASSED
from .notebooks import CHECK, SOLUTION
from .registry import Check
from .sandbox import Limits, RunFiles, RunReport

TIMEOUT, NOT_RUN, MISSING, UNREADABLE, GRADER_ERROR = "timeout", "not-run", "missing", "unreadable", "grader-error"
GRADED, KERNEL_DIED, KERNEL_FAILED = "graded", "kernel-died", "kernel-failed"
CHECK_STOPPERS = ("CheckFailed", "CheckBroken")


@dataclass(frozen=True)
class CheckResult:
    check: str
    points: float
    max_points: float
    status: str
    message: str
    hidden: bool = False


@dataclass
class NotebookResult:
    """The grade of one notebook of one learner."""

    learner: str
    notebook: str
    status: str
    checks: list[CheckResult]
    notes: list[str] = field(default_factory=list)
    feedback_html: str = ""

    @property
    def score(self) -> float:
        return sum(c.points for c in self.checks)

    @property
    def max_score(self) -> float:
        return sum(c.max_points for c in self.checks)


def unrun(checks: list[Check], status: str, message: str) -> list[CheckResult]:
    """Zero-point results for every check of a notebook that could not be run at all."""
    return [CheckResult(c.id, 0, c.points, status, message, c.hidden) for c in checks]


@dataclass
class Timeline:
    """What the worker's log says happened, cell by cell."""

    starts: dict[int, int] = field(default_factory=dict)
    ends: dict[int, dict] = field(default_factory=dict)
    stop: dict | None = None

    @classmethod
    def read(cls, path: Path) -> Timeline:
        timeline = cls()
        for event in _json_lines(path):
            kind = event.get("event")
            if kind == "start":
                timeline.starts[event["index"]] = event["offset"]
            elif kind == "end":
                timeline.ends[event["index"]] = event
            elif kind in ("died", "deadline", "stuck", "kernel-failed", "worker-error") and timeline.stop is None:
                timeline.stop = event
        return timeline


def _json_lines(path: Path) -> list[dict]:
    """The JSON objects of a JSON-lines file; a line cut short by a kill is skipped."""
    if not path.is_file():
        return []
    objects = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            value = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(value, dict):
            objects.append(value)
    return objects


def _records(path: Path) -> list[tuple[int, dict]]:
    """Each check result with the byte offset where it starts in the results file."""
    if not path.is_file():
        return []
    records, offset = [], 0
    for line in path.read_bytes().splitlines(keepends=True):
        try:
            value = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError):
            value = None
        if isinstance(value, dict) and value.get("status") in (PASSED, FAILED, ERROR):
            records.append((offset, value))
        offset += len(line)
    return records


class Interpreter:
    """Reads one run's files and judges each check of the assembled notebook."""

    def __init__(self, slots: list[Slot], files: RunFiles, report: RunReport, limits: Limits):
        self.slots = slots
        self.timeline = Timeline.read(files.log)
        self.records = _records(files.results)
        self.report = report
        self.limits = limits
        self.files = files

    def notebook_status(self) -> str:
        if self.report.killed:
            return TIMEOUT
        kind = (self.timeline.stop or {}).get("event")
        return {
            "died": KERNEL_DIED,
            "deadline": TIMEOUT,
            "stuck": TIMEOUT,
            "kernel-failed": KERNEL_FAILED,
            "worker-error": GRADER_ERROR,
        }.get(kind, GRADED)

    def results(self, specs: dict[str, Check]) -> list[CheckResult]:
        results = []
        for index, slot in enumerate(self.slots):
            if slot.role not in (CHECK, HIDDEN):
                continue
            for check_id in slot.checks:
                spec = specs[check_id]
                status, message = self._judge(index, slot, check_id)
                if status in (ERROR, TIMEOUT):
                    message += f"\nReread: {spec.section}."
                points = spec.points if status == PASSED else 0
                results.append(CheckResult(check_id, points, spec.points, status, message, spec.hidden))
        return results

    def _judge(self, index: int, slot: Slot, check_id: str) -> tuple[str, str]:
        start = self.timeline.starts.get(index)
        end = self.timeline.ends.get(index)
        if start is None:
            return NOT_RUN, f"Not run: {self._why_stopped()}"
        window_end = end["offset"] if end else float("inf")
        mine = [r for offset, r in self.records if start <= offset < window_end and r.get("check") == check_id]
        if mine:
            return mine[-1]["status"], self._clean(str(mine[-1].get("message", "")))
        cause = self._earlier_error(index)
        if end is None:
            stopped = TIMEOUT if self.report.killed else ERROR
            return stopped, f"The check did not finish: {self._why_stopped()}{cause}"
        if end["status"] == "timeout":
            return TIMEOUT, f"The check cell was {end['evalue']}; does your code loop forever?{cause}"
        if end["status"] == "error" and end.get("ename") in CHECK_STOPPERS:
            return NOT_RUN, "Not run: an earlier check in the same cell failed, which stops the cell."
        if end["status"] == "error":
            return ERROR, f"The check could not run: its cell raised {self._error_text(end)}.{cause}"
        return ERROR, "The check cell ran but reported no result (was `check` redefined in the notebook?)."

    def _why_stopped(self) -> str:
        stop = self.timeline.stop or {}
        kind = stop.get("event")
        where = self._label(stop.get("index"))
        if self.report.killed:
            return f"grading of this notebook was stopped after {self.limits.wall_seconds:g} s."
        if kind == "died":
            return (
                f"the kernel died while running {where} (it crashed, called os._exit, was killed, "
                f"or hit the {self.limits.memory_mb} MiB memory limit)."
            )
        if kind == "deadline":
            return f"the notebook used up its {self.limits.notebook_timeout:g} s time limit before this cell."
        if kind == "stuck":
            return f"{where} ran past its time limit and ignored the interrupt, so grading stopped there."
        if kind == "kernel-failed":
            return f"the notebook's kernel could not start ({self._clean(stop.get('message', ''))})."
        if kind == "worker-error":
            return f"the grader failed while running the notebook ({self._clean(stop.get('message', ''))})."
        if self.report.returncode:
            return (
                f"the process that runs notebooks failed (exit status {self.report.returncode}) before this cell: "
                f"{self._last_words()}"
            )
        return "the run ended before this cell."

    def _last_words(self) -> str:
        """The last line the worker printed (with a memory limit too small to start Python: MemoryError)."""
        try:
            lines = self.files.worker_output.read_text(encoding="utf-8", errors="replace").strip().splitlines()
        except FileNotFoundError:
            lines = []
        return self._clean(lines[-1][:300]) if lines else "it printed nothing."

    def _earlier_error(self, index: int) -> str:
        """' Earlier, <cell> raised X.' for the nearest failed learner cell since the previous check."""
        for earlier in range(index - 1, -1, -1):
            slot = self.slots[earlier]
            if slot.role in (CHECK, HIDDEN):
                return ""
            end = self.timeline.ends.get(earlier)
            if slot.role in (SOLUTION, FREE) and end and end["status"] != "ok":
                return f" Earlier, {slot.label} raised {self._error_text(end)}."
        return ""

    def _error_text(self, end: dict) -> str:
        ename, evalue = end.get("ename") or "an error", self._clean(end.get("evalue") or "")[:500]
        if end["status"] == "timeout":
            return f"no result: it was {evalue}"
        if ename == "MemoryError":
            return f"MemoryError (a notebook may use at most {self.limits.memory_mb} MiB)"
        text = f"{ename}: {evalue}" if evalue else ename
        if "solutions" in evalue and ename in ("FileNotFoundError", "PermissionError", "OSError", "NotADirectoryError"):
            text += " (the grader gives notebooks no access to solutions/: compute the answer in the notebook)"
        return text

    def _label(self, index: int | None) -> str:
        if index is None or index >= len(self.slots):
            return "a cell"
        slot = self.slots[index]
        return (
            "a check cell" if slot.role in (CHECK, HIDDEN) else "the grader's set-up cell" if index == 0 else slot.label
        )

    def _clean(self, text: str) -> str:
        """Text without the scratch folder's random path, so messages are the same every run."""
        return text.replace(str(self.files.scratch), "<scratch>")
