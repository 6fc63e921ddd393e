"""Turn one run's result into one result per check, each with a status and a message that names the cause.

The worker's result holds a verdict for every answer it collected, and what happened to
every cell. A check without a verdict gets a status that says why: the request for its
answer ran out of time (``timeout``) or failed (``error``), or it never ran because the
kernel died, hit a limit, or time ran out earlier (``not-run``). Where a learner's cell
failed before a check (it looped, ran out of memory, raised), the check's message names
that cell and its fate, not only the NameError that followed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .assemble import FREE, HIDDEN, Slot
from .judge import ERROR
from .notebooks import CHECK, SOLUTION
from .registry import Check
from .sandbox import Limits

TIMEOUT, NOT_RUN, MISSING, UNREADABLE, GRADER_ERROR = "timeout", "not-run", "missing", "unreadable", "grader-error"
WRONG_NOTEBOOK = "wrong-notebook"
GRADED, KERNEL_DIED, KERNEL_FAILED = "graded", "kernel-died", "kernel-failed"


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


class Interpreter:
    """Reads one run's result (``worker.grade``) and judges each check of the assembled notebook."""

    def __init__(self, slots: list[Slot], result: dict, *, killed: bool, limits: Limits):
        self.slots = slots
        self.verdicts = result.get("verdicts", {})
        self.cells = {int(k): v for k, v in result.get("cells", {}).items()}
        self.collected = result.get("collected", {})
        failed = {"event": "worker-error", "message": result["error"]} if "error" in result else None
        self.stop = result.get("stop") or failed
        self.killed = killed
        self.limits = limits

    def notebook_status(self) -> str:
        if self.killed:
            return TIMEOUT
        kind = (self.stop or {}).get("event")
        return {
            "died": KERNEL_DIED,
            "broke": KERNEL_DIED,
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
                verdict = self.verdicts.get(check_id)
                if verdict is not None:
                    status, points, message = verdict["status"], verdict["points"], verdict["message"]
                    if status == ERROR:
                        message = message.replace("\nReread:", f"{self._earlier_failure(index)}\nReread:", 1)
                else:
                    status, message = self._without_answer(index, check_id)
                    points = 0
                    message += f"\nReread: {spec.section}."
                results.append(CheckResult(check_id, points, spec.points, status, message, spec.hidden))
        return results

    def _without_answer(self, index: int, check_id: str) -> tuple[str, str]:
        fate = self.collected.get(check_id)
        cause = self._earlier_failure(index)
        if fate is None:
            return NOT_RUN, f"Not run: {self._why_stopped()}{cause}"
        if fate["status"] == "timeout":
            return TIMEOUT, f"Collecting your answer was {fate['evalue']}; does your code loop forever?{cause}"
        if fate.get("ename") == "NoAnswer":
            return ERROR, (
                "Your notebook gave the grader no answer here (did it change mmlab or IPython's display, or "
                f"send an output larger than {self.limits.message_mb} MiB at once, which ends the grader's reading?)."
            )
        return ERROR, f"Your answer could not be collected: {self._error_text(fate)}.{cause}"

    def _why_stopped(self) -> str:
        stop = self.stop or {}
        kind = stop.get("event")
        where = self._label(stop.get("index"))
        if self.killed:
            return f"grading of this notebook was stopped after {self.limits.wall_seconds:g} s."
        if kind == "died":
            how = {
                "cpu": f"it used up its {self.limits.cpu_seconds} s of CPU time",
                "disk": f"it wrote a file larger than {self.limits.disk_mb} MiB",
                "killed": "it was killed (most often: out of memory)",
            }.get(stop.get("how"), "it crashed, exited, or was killed")
            return (
                f"the kernel died while running {where}: {how}. A notebook may use at most "
                f"{self.limits.memory_mb} MiB, {self.limits.processes} processes and "
                f"{self.limits.cpu_seconds} s of CPU time."
            )
        if kind == "deadline":
            return f"the notebook used up its {self.limits.notebook_timeout:g} s time limit before this cell."
        if kind == "stuck":
            return f"{where} ran past its time limit and ignored the interrupt, so grading stopped there."
        if kind == "broke":
            return (
                f"grading could not go on after {where}: the grader failed on what the notebook sent it "
                f"({stop.get('message', '')}); a notebook that forges messages to the grader ends its own grading."
            )
        if kind == "kernel-failed":
            return f"the notebook's kernel could not start ({stop.get('message', '')})."
        if kind == "worker-error":
            return f"the grader failed while running the notebook ({stop.get('message', '')}); please report it."
        return "the run ended before this cell."

    def _earlier_failure(self, index: int) -> str:
        """' Earlier, <cell> raised X.' for the nearest failed learner cell since the previous check."""
        for earlier in range(index - 1, -1, -1):
            slot = self.slots[earlier]
            if slot.role in (CHECK, HIDDEN):
                return ""
            fate = self.cells.get(earlier)
            if slot.role in (SOLUTION, FREE) and fate and fate["status"] != "ok":
                return f" Earlier, {slot.label} {self._error_text(fate)}."
        return ""

    def _error_text(self, fate: dict) -> str:
        ename, evalue = fate.get("ename") or "an error", (fate.get("evalue") or "")[:500]
        if fate["status"] == "timeout":
            return f"was {evalue}"
        if ename == "MemoryError":
            return f"ran out of memory (MemoryError: a notebook may use at most {self.limits.memory_mb} MiB)"
        text = f"raised {ename}: {evalue}" if evalue else f"raised {ename}"
        if ename in ("FileNotFoundError", "PermissionError", "OSError", "ModuleNotFoundError"):
            text += " (graded notebooks see no files but their own: compute the answer in the notebook)"
        return text

    def _label(self, index: int | None) -> str:
        if index is None or index >= len(self.slots):
            return "a cell"
        slot = self.slots[index]
        if slot.role in (CHECK, HIDDEN):
            return "a check cell"
        return "the grader's set-up cell" if index == 0 else slot.label
