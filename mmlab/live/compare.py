"""Comparing scenario records: the model against the live kernel, field by field, and the
fingerprint (which model profiles behave like the host).

Both work on records from mmlab.scenarios (plain data), so a stored host record
(tests/data/host-*/) compares as well as a fresh one. Fields are judged as
``scenarios.judgement`` says: exact, tolerant (within ``scenarios.TOLERANCE`` pages) or
shown only (global noise, never judged). A value one side cannot read (None) is
"unavailable", which is neither agreement nor disagreement.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from .. import scenarios
from ..scenarios import TOLERANCE, flatten, judgement, missing_value

AGREE, DIFFER, UNAVAILABLE, SHOWN = "agree", "differ", "unavailable", "shown"


@dataclass(frozen=True)
class Row:
    """One field of one step, as two records saw it."""

    step: int
    label: str
    path: str
    left: object
    right: object
    verdict: str


def verdict(path: str, left, right) -> str:
    kind = judgement(path)
    if kind == "shown":
        return SHOWN
    if left is None or right is None:
        return AGREE if left is right else UNAVAILABLE
    if kind == "tolerant":
        return AGREE if abs(left - right) <= TOLERANCE else DIFFER
    return AGREE if left == right else DIFFER


def compare(left: dict, right: dict) -> list[Row]:
    """Every field of every step of two records of the same scenario, with a verdict.

    A step present on one side only (the scenario stopped early on the other) yields one
    "differ" row for its outcome."""
    if left["scenario"] != right["scenario"]:
        raise ValueError(f"cannot compare scenario {left['scenario']!r} with {right['scenario']!r}")
    rows = []
    for i in range(max(len(left["steps"]), len(right["steps"]))):
        if i >= len(left["steps"]) or i >= len(right["steps"]):
            label = (left["steps"] if i < len(left["steps"]) else right["steps"])[i]["label"]
            rows.append(Row(i, label, "outcome", None, None, DIFFER))
            continue
        fl, fr = flatten(left["steps"][i]), flatten(right["steps"][i])
        label = left["steps"][i]["label"]
        for path in sorted(fl.keys() | fr.keys(), key=_path_order):
            lv, rv = fl.get(path, missing_value(path)), fr.get(path, missing_value(path))
            rows.append(Row(i, label, path, lv, rv, verdict(path, lv, rv)))
    return rows


def _path_order(path: str) -> tuple:
    head = path.split(".")[0]
    return ({"outcome": 0, "value": 1, "vmstat": 2}.get(head, 3), path)


def disagreements(left: dict, right: dict) -> list[Row]:
    return [r for r in compare(left, right) if r.verdict == DIFFER]


# -- fingerprint ----------------------------------------------------------------------


@dataclass(frozen=True)
class Decision:
    """How one scenario splits the profiles, and where the host falls.

    ``fields`` are the (step label, path) pairs on which the profiles' predictions
    differ; ``groups`` maps each distinct prediction (the values of those fields) to the
    profiles making it; ``host`` is what the host showed; ``matches`` the profiles whose
    prediction the host agrees with."""

    scenario: str
    fields: tuple[tuple[str, str], ...]
    groups: dict[tuple, tuple[str, ...]]
    host: tuple
    matches: tuple[str, ...]


@dataclass(frozen=True)
class Fingerprint:
    profiles: tuple[str, ...]  # the profiles every deciding scenario matched
    decisions: list[Decision]  # only the scenarios that tell some profiles apart
    agreement: dict[str, dict[str, int]]  # profile -> scenario -> number of differing fields


def _judged_values(record: dict) -> dict[tuple[int, str, str], object]:
    values = {}
    for i, step in enumerate(record["steps"]):
        for path, value in flatten(step).items():
            if judgement(path) != "shown":
                values[(i, step["label"], path)] = value
    return values


def _same(path: str, a, b) -> bool:
    return verdict(path, a, b) in (AGREE, UNAVAILABLE)


def decide(scenario: str, predictions: dict[str, dict], host: dict) -> Decision:
    """Split the profiles by their predictions for one scenario and place the host."""
    values = {p: _judged_values(r) for p, r in predictions.items()}
    keys = sorted(set().union(*values.values()), key=lambda k: (k[0], _path_order(k[2])))
    first = next(iter(values.values()))

    def get(vals, key):
        return vals.get(key, missing_value(key[2]))

    deciding = [k for k in keys if any(not _same(k[2], get(first, k), get(v, k)) for v in values.values())]
    groups: dict[tuple, list[str]] = {}
    for profile, vals in values.items():
        groups.setdefault(tuple(get(vals, k) for k in deciding), []).append(profile)
    host_values = _judged_values(host)
    seen = tuple(get(host_values, k) for k in deciding)
    matches = [
        p
        for p, vals in values.items()
        if all(_same(k[2], get(vals, k), v) for k, v in zip(deciding, seen, strict=True))
    ]
    return Decision(
        scenario,
        tuple((label, path) for _, label, path in deciding),
        {k: tuple(v) for k, v in groups.items()},
        seen,
        tuple(matches),
    )


def model_machine_factory(kernel: str, env=None) -> Callable[[], object]:
    """Fresh model machines for one profile, set up like the host (THP mode, zero page)."""
    from ..machine import Machine

    options = {}
    if env is not None and env.thp in ("always", "madvise", "never"):
        options["thp"] = env.thp
    if env is not None and env.huge_zero_page is not None:
        options["use_zero_page"] = env.huge_zero_page
    return lambda: Machine(kernel=kernel, **options)


def predict(names: Iterable[str], profiles: Iterable[str], env=None) -> dict[str, dict[str, dict]]:
    """Each scenario run once on each model profile: {profile: {scenario: record}}."""
    return {
        p: {name: scenarios.run_scenario(name, model_machine_factory(p, env)()) for name in names} for p in profiles
    }


def fingerprint(host_records: dict[str, dict], predictions: dict[str, dict[str, dict]]) -> Fingerprint:
    """Keep the scenarios whose predictions tell profiles apart, and intersect the
    profiles each one matches. ``predictions`` is ``predict()``'s result."""
    profiles = tuple(predictions)
    agreement = {
        p: {name: len(disagreements(predictions[p][name], host)) for name, host in host_records.items()}
        for p in profiles
    }
    decisions = []
    for name, host in host_records.items():
        decision = decide(name, {p: predictions[p][name] for p in profiles}, host)
        if decision.fields:
            decisions.append(decision)
    survivors = tuple(p for p in profiles if all(p in d.matches for d in decisions))
    return Fingerprint(survivors, decisions, agreement)
