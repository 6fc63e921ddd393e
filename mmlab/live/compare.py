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
from ..scenarios import AGREE, DIFFER, SHOWN, UNAVAILABLE, flatten, judgement, lookup, step_verdicts, verdict

__all__ = [
    "AGREE",
    "DIFFER",
    "SHOWN",
    "UNAVAILABLE",
    "compare",
    "decide",
    "disagreements",
    "fingerprint",
    "format_rows",
    "predict",
    "side_by_side",
]


@dataclass(frozen=True)
class Row:
    """One field of one step, as two records saw it."""

    step: int
    label: str
    path: str
    left: object
    right: object
    verdict: str


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
        label = left["steps"][i]["label"]
        found = sorted(step_verdicts(left["steps"][i], right["steps"][i]), key=lambda f: _path_order(f[0]))
        rows.extend(Row(i, label, *f) for f in found)
    return rows


def _path_order(path: str) -> tuple:
    head = path.split(".")[0]
    return ({"outcome": 0, "value": 1, "vmstat": 2}.get(head, 3), path)


def disagreements(left: dict, right: dict) -> list[Row]:
    return [r for r in compare(left, right) if r.verdict == DIFFER]


def format_rows(rows: Iterable[Row], names: tuple[str, str] = ("model", "host")) -> list[str]:
    """One line per row: step, field, both values and the verdict."""
    left, right = names
    return [f"step {r.step} {r.label}: {r.path}: {left} {r.left!r}, {right} {r.right!r} [{r.verdict}]" for r in rows]


def side_by_side(name: str, profile: str = "6.18.44", runs: int = 2, kernel: str | None = None) -> list[Row]:
    """Run one scenario on a model profile and on this machine's kernel, or with ``kernel``
    on that kernel booted under QEMU (mmlab.live.vm: "6.1", "6.12", ...); every field of
    every step, model on the left, kernel on the right. For notebooks:

        for line in format_rows(side_by_side("lazyfree-reclaim")): print(line)
    """
    from .env import probe
    from .machine import Machine

    if kernel is None:
        env, live = probe(), scenarios.record(name, Machine, runs=runs)
    else:
        from .vm import VM

        with VM(kernel) as vm:
            env, live = vm.env, vm.record(name, runs)
    model = scenarios.run_scenario(name, model_machine_factory(profile, env)())
    return compare(model, live)


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


def _flat_steps(record: dict) -> list[dict[str, object]]:
    return [flatten(step) for step in record["steps"]]


def _same(path: str, a, b) -> bool:
    return verdict(path, a, b) in (AGREE, UNAVAILABLE)


def decide(scenario: str, predictions: dict[str, dict], host: dict) -> Decision:
    """Split the profiles by their predictions for one scenario and place the host."""
    flats = {p: _flat_steps(r) for p, r in predictions.items()}
    labels = [step["label"] for step in next(iter(predictions.values()))["steps"]]
    keys = sorted(
        {
            (i, path)
            for steps in flats.values()
            for i, flat in enumerate(steps)
            for path in flat
            if judgement(path) != "shown"
        },
        key=lambda k: (k[0], _path_order(k[1])),
    )

    def get(steps, key):
        i, path = key
        return lookup(steps[i], path) if i < len(steps) else None

    first = next(iter(flats.values()))
    deciding = [k for k in keys if any(not _same(k[1], get(first, k), get(steps, k)) for steps in flats.values())]
    groups: dict[tuple, list[str]] = {}
    for profile, steps in flats.items():
        groups.setdefault(tuple(get(steps, k) for k in deciding), []).append(profile)
    host_steps = _flat_steps(host)
    seen = tuple(get(host_steps, k) for k in deciding)
    matches = [
        p
        for p, steps in flats.items()
        if all(_same(k[1], get(steps, k), v) for k, v in zip(deciding, seen, strict=True))
    ]
    return Decision(
        scenario,
        tuple((labels[i], path) for i, path in deciding),
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
