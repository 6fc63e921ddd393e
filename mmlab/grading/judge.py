"""Judge a collected answer against the answer key: the one place a verdict is made.

The key is the registered checks (``mmlab.grading.checks``): each computes the expected
answer from the learner's variant, or, for a function, from each input it gives the
learner's function. The judge runs only where the learner's code cannot: in the grader's
own process, after the notebook's sandbox has ended, or, for a learner checking their own
work, in their notebook (``check_here``), where there is nothing to protect.

A function answer earns the check's points in proportion to the inputs it gets right
(partial credit); a value answer is right or wrong. Feedback says what was expected in
words, what is wrong, which common misconception the answer shows (every one detected),
and which lecture section to reread, without printing the expected answer.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from . import learner, plain, registry
from .collect import collect
from .compare import mismatch, shown

PASSED, FAILED, ERROR = "passed", "failed", "error"


class CheckBroken(RuntimeError):
    """The check itself failed while computing the expected answer: a fault in the course."""


@dataclass(frozen=True)
class Verdict:
    """What one check concluded about one answer."""

    check: str
    status: str
    points: float
    max_points: float
    message: str
    hidden: bool = False


def points_text(points: float) -> str:
    """'1 point', '2 points', '0.5 points'."""
    return f"{points:g} point{'' if points == 1 else 's'}"


def cases_for(spec: registry.Check, v: learner.Variant) -> list | None:
    """The plain inputs the learner's function is called on (None for a value check)."""
    if not spec.takes_function:
        return None
    try:
        return plain.encode(spec.cases(v))
    except Exception as error:
        raise CheckBroken(_fault("choosing the inputs", error)) from error


def _solve(spec: registry.Check, *args: Any) -> Any:
    try:
        return plain.round_trip(spec.solve(*args))
    except Exception as error:
        raise CheckBroken(_fault("computing the expected answer", error)) from error


def _fault(doing: str, error: Exception) -> str:
    return (
        f"{doing} raised {type(error).__name__}: {error}. "
        "This is a fault in the course, not in your answer: please report it."
    )


def judge(spec: registry.Check, v: learner.Variant, cases: list | None, collected: Mapping) -> Verdict:
    """The verdict on ``collected`` (from ``answers.collect``, maybe forged: it is only data)."""
    if "error" in collected:
        message = f"✘ {spec.id}: computing your answer raised {collected['error']}.\nReread: {spec.section}."
        return Verdict(spec.id, ERROR, 0, spec.points, message, spec.hidden)
    try:
        if spec.takes_function:
            right, total, problem = _function_problem(spec, cases or [], collected)
        else:
            problem = _value_problem(spec, v, collected)
            right, total = (0, 1) if problem else (1, 1)
    except CheckBroken as broken:
        return Verdict(spec.id, ERROR, 0, spec.points, f"✘ {spec.id} could not run: {broken}", spec.hidden)
    points = spec.points * right / total if total else 0
    if problem is None:
        return Verdict(spec.id, PASSED, spec.points, spec.points, passed_message(spec), spec.hidden)
    return Verdict(spec.id, FAILED, points, spec.points, failed_message(spec, v, problem, points), spec.hidden)


def _value_problem(spec: registry.Check, v: learner.Variant, collected: Mapping) -> str | None:
    if "function" in collected:
        return f"you gave a function ({collected['function']}); call it and check the value"
    answer, problem = _answer(collected)
    if problem:
        return problem
    expected = _solve(spec, v)
    problem = mismatch(answer, expected)
    if problem is None:
        return None
    hints = [explanation.format_map(v) for explanation, wrong in spec.mistakes if _shows(answer, expected, wrong, v)]
    return " ".join([f"{problem}.", *hints]) if hints else problem


def _answer(collected: Mapping) -> tuple[Any, str | None]:
    """(the decoded answer, None) or (None, why there is no answer to compare)."""
    if "error" in collected:
        return None, f"computing your answer raised {collected['error']}"
    if "unplain" in collected:
        return None, f"your answer cannot be graded: {collected['unplain']}"
    if "stub" in collected:
        return None, "it raised NotImplementedError: replace the stub with your code"
    if "value" not in collected:
        return None, "the grader received no answer"
    try:
        return plain.decode(collected["value"]), None
    except plain.NotPlain as problem:  # a notebook that forged its answer's data
        return None, f"your answer cannot be graded: {problem}"


def _shows(answer: Any, expected: Any, wrong_answer, v: learner.Variant) -> bool:
    """True if ``answer`` shows the misconception whose answer ``wrong_answer(v)`` computes: it
    equals that answer, or agrees with it in a part (a dict value, a list item) where it is wrong."""
    try:
        wrong = plain.round_trip(wrong_answer(v))
    except Exception:  # a misconception that does not apply to this variant
        return False
    if mismatch(answer, wrong) is None:
        return True
    if isinstance(answer, Mapping) and isinstance(expected, Mapping) and isinstance(wrong, Mapping):
        parts = [(answer[k], expected[k], wrong[k]) for k in expected if k in answer and k in wrong]
    elif all(isinstance(x, list) for x in (answer, expected, wrong)) and len(answer) == len(expected) == len(wrong):
        parts = list(zip(answer, expected, wrong, strict=True))
    else:
        return False
    return any(mismatch(a, e) and mismatch(e, w) and mismatch(a, w) is None for a, e, w in parts)


def _function_problem(spec: registry.Check, cases: list, collected: Mapping) -> tuple[int, int, str | None]:
    """(inputs answered right, inputs, the first problem or None)."""
    if "not_function" in collected:
        given = collected["not_function"]
        value, problem = _answer(given if isinstance(given, Mapping) else {})
        return 0, len(cases), f"you gave {'a value' if problem else shown(value)}, but a function is expected"
    if "results" not in collected:
        _, problem = _answer(collected)
        return 0, len(cases), problem or "the grader received no answer"
    results = collected["results"]
    name = str(collected.get("name", "your function"))[:80]
    right, first = 0, None
    for index, args in enumerate(cases):
        result = results[index] if isinstance(results, list) and index < len(results) else {}
        call = f"{name}({', '.join(shown(a) for a in plain.decode(args))})"
        answer, problem = _answer(result if isinstance(result, Mapping) else {})
        if problem is None:
            problem = mismatch(answer, _solve(spec, *plain.decode(args)))
            problem = problem and f"{call} is wrong: {problem}"
        else:
            problem = f"{call}: {problem}"
        right += problem is None
        first = first or problem
    if first and len(cases) > 1:
        first = f"{right} of {len(cases)} inputs right; the first wrong one: {first}"
    return right, len(cases), first


def passed_message(spec: registry.Check) -> str:
    """The line shown when ``spec`` passes, saying whether hidden checks remain."""
    if spec.hidden:
        return f"✔ hidden check {spec.id} passed ({points_text(spec.points)})."
    hidden = len(registry.hidden_checks_of(spec.exercise))
    if not hidden:
        return f"✔ {spec.id} passed ({points_text(spec.points)})."
    return (
        f"✔ {spec.id} passed ({points_text(spec.points)}). This was the public check only: when your notebook "
        f"is graded, {hidden} hidden check{'s run' if hidden > 1 else ' runs'} on this exercise as well."
    )


def failed_message(spec: registry.Check, v: learner.Variant, problem: str, points: float) -> str:
    """The feedback for a failed check: what was expected, what is wrong, what to reread."""
    earned = f"{points:g} of {points_text(spec.points)}"
    return "\n".join(
        [
            f"✘ {'hidden check ' if spec.hidden else ''}{spec.id} failed ({earned}).",
            f"Expected: {spec.expects.format_map(v)}.",
            f"What is wrong: {problem.rstrip('.')}.",
            f"Reread: {spec.section}.",
        ]
    )


def check_here(check_id: str, answer: Any) -> Verdict:
    """Judge ``answer`` in the learner's own notebook and show the verdict (public checks)."""
    spec = registry.get_check(check_id)
    v = learner.variant(spec.exercise)
    try:
        cases = cases_for(spec, v)
    except CheckBroken as broken:
        verdict = Verdict(spec.id, ERROR, 0, spec.points, f"✘ {spec.id} could not run: {broken}", spec.hidden)
    else:
        verdict = judge(spec, v, cases, collect(lambda: answer, cases))
    _show(verdict)
    return verdict


def _show(verdict: Verdict) -> None:
    """Print the verdict; a failure in red, as a notebook shows errors, but without stopping it."""
    if verdict.status == PASSED:
        print(verdict.message)
        return
    from .links import show_feedback

    show_feedback(verdict.message)
