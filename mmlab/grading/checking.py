"""``check(check_id, answer)``: the one call a check cell makes.

A check computes the expected answer for the learner's variant, compares, and then:

- on success prints a short line on stdout (never stderr: graders count stderr as failure)
  that says honestly whether hidden checks remain for the grader to run;
- on failure raises ``CheckFailed`` (an AssertionError) whose message says what was expected
  in words, what is wrong with the answer, and which lecture section to reread. The cell
  fails, so nbval and the notebook both show it.

When ``MMLAB_GRADE_RESULTS`` names a file (``mmlab grade`` and ``mmlab check`` set it), each
outcome is appended to it as one JSON line *before* anything is raised, so the grader reads
outcomes from that file rather than from the notebook's outputs.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

from . import learner, registry
from .compare import mismatch, shown

RESULTS_ENV = "MMLAB_GRADE_RESULTS"

PASSED, FAILED, ERROR = "passed", "failed", "error"


class CheckFailed(AssertionError):
    """A check did not pass. The message is the feedback for the learner."""

    def _render_traceback_(self) -> list[str]:
        """What IPython shows for this error: the feedback alone, not a stack of mmlab's frames."""
        return [f"{type(self).__name__}: {self}"]


class CheckBroken(RuntimeError):
    """The check itself failed while computing the expected answer: a fault in the course, not yours."""


@dataclass(frozen=True)
class Outcome:
    """What one check concluded: its status and the message shown to the learner."""

    check: str
    status: str
    message: str


def check(check_id: str, answer: Any) -> None:
    """Check ``answer`` against check ``check_id`` for the current learner's variant.

    ``answer`` is a value, or a function when the check says so (it then calls it on its
    own cases). Raises CheckFailed, with feedback, when the answer is wrong.
    """
    __tracebackhide__ = True  # pytest hides this frame; IPython shows CheckFailed without frames
    spec = registry.get_check(check_id)
    outcome = evaluate(spec, answer)
    _record(outcome)
    if outcome.status == PASSED:
        print(outcome.message)
        return
    if outcome.status == ERROR:
        raise CheckBroken(outcome.message)
    raise CheckFailed(outcome.message)


def evaluate(spec: registry.Check, answer: Any) -> Outcome:
    """Run check ``spec`` on ``answer`` for the current learner, without raising."""
    v = learner.variant(spec.exercise)
    try:
        problem = _function_problem(spec, answer, v) if spec.takes_function else _value_problem(spec, answer, v)
    except CheckBroken as broken:
        return Outcome(spec.id, ERROR, f"✘ {spec.id} could not run: {broken}")
    if problem is None:
        return Outcome(spec.id, PASSED, passed_message(spec))
    return Outcome(spec.id, FAILED, failed_message(spec, v, problem))


def _solve(spec: registry.Check, *args: Any) -> Any:
    try:
        return spec.solve(*args)
    except Exception as error:  # a fault in the course's check, reported as such
        raise CheckBroken(
            f"computing the expected answer raised {type(error).__name__}: {error}. "
            "This is a fault in the course, not in your answer: please report it."
        ) from error


def _value_problem(spec: registry.Check, answer: Any, v: learner.Variant) -> str | None:
    if callable(answer) and not isinstance(answer, type):
        return f"you gave a function ({getattr(answer, '__name__', shown(answer))}); call it and check the value"
    problem = mismatch(answer, _solve(spec, v))
    if problem is None:
        return None
    for explanation, wrong in spec.mistakes:
        try:
            if mismatch(answer, wrong(v)) is None:
                return f"{problem}. {explanation.format_map(v)}"
        except Exception:  # a mistake that does not apply to this variant
            continue
    return problem


def _function_problem(spec: registry.Check, answer: Any, v: learner.Variant) -> str | None:
    if not callable(answer):
        return f"you gave {shown(answer)}, but a function is expected"
    for args in spec.cases(v):
        call = f"{getattr(answer, '__name__', 'your function')}({', '.join(map(shown, args))})"
        try:
            got = answer(*args)
        except NotImplementedError:
            return f"{call} raised NotImplementedError: replace the stub with your code"
        except Exception as error:
            return f"{call} raised {type(error).__name__}: {error}"
        problem = mismatch(got, _solve(spec, *args))
        if problem:
            return f"{call} is wrong: {problem}"
    return None


def _points(points: float) -> str:
    """'1 point', '2 points', '0.5 points'."""
    return f"{points:g} point{'' if points == 1 else 's'}"


def passed_message(spec: registry.Check) -> str:
    """The line printed when ``spec`` passes, saying whether hidden checks remain."""
    if spec.hidden:
        return f"✔ hidden check {spec.id} passed ({_points(spec.points)})."
    hidden = len(registry.hidden_checks_of(spec.exercise))
    if not hidden:
        return f"✔ {spec.id} passed ({_points(spec.points)})."
    return (
        f"✔ {spec.id} passed ({_points(spec.points)}). This was the public check only: when your notebook "
        f"is graded, {hidden} hidden check{'s run' if hidden > 1 else ' runs'} on this exercise as well."
    )


def failed_message(spec: registry.Check, v: learner.Variant, problem: str) -> str:
    """The feedback for a failed check: what was expected, what is wrong, what to reread."""
    lines = [
        f"✘ {'hidden check ' if spec.hidden else ''}{spec.id} failed (0 of {_points(spec.points)}).",
        f"Expected: {spec.expects.format_map(v)}.",
        f"What is wrong: {problem.rstrip('.')}.",
        f"Reread: {spec.section}.",
    ]
    declared = learner.declared_learner()
    if os.environ.get(learner.GRADED_LEARNER_ENV) and declared and declared != v.learner:
        lines.append(
            f"Note: this was graded as learner {v.learner!r} (your submission folder), but the notebook "
            f"set learner_id({declared!r}), so its numbers were for another learner's variant."
        )
    return "\n".join(lines)


def _record(outcome: Outcome) -> None:
    """Append ``outcome`` to the results file named by MMLAB_GRADE_RESULTS, if any."""
    path = os.environ.get(RESULTS_ENV)
    if not path:
        return
    line = json.dumps({"check": outcome.check, "status": outcome.status, "message": outcome.message})
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)
