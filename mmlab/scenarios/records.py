"""Records: one scenario run as plain data (``run_scenario``), several runs merged
(``record``), and two records compared field by field, each field judged as the scenario
decides it (``judgement``, ``verdict``)."""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Callable

from .catalogue import get
from .run import Run, Scenario

# How a field is judged when two records are compared (and when runs are merged):
#   exact    - the scenario alone decides it;
#   tolerant - the scenario drives it, but other processes move it by a few pages too;
#   shown    - global noise (every process moves it) or global state (the huge zero page
#              is allocated once per boot); recorded and shown, never judged.
TOLERANCE = 64  # pages, for tolerant counters
TOLERANT_VMSTAT = {
    "nr_mlock",
    "unevictable_pgs_mlocked",
    "unevictable_pgs_munlocked",
    "unevictable_pgs_culled",
    "unevictable_pgs_rescued",
    "unevictable_pgs_cleared",
    "unevictable_pgs_stranded",
}
SHOWN_VMSTAT = {"nr_anon_pages", "pgfault", "pgactivate", "pgdeactivate", "thp_zero_page_alloc"}
# smaps Referenced reflects accessed bits, which anything sampling them clears (DAMON,
# idle page tracking, kswapd); the scenario does not decide it.
SHOWN_SMAPS = {"Referenced"}


def judgement(path: str) -> str:
    """'exact', 'tolerant' or 'shown' for a flattened field path (see ``flatten``)."""
    parts = path.split(".")
    if parts[0] == "vmstat":
        if parts[1] in SHOWN_VMSTAT:
            return "shown"
        return "tolerant" if parts[1] in TOLERANT_VMSTAT else "exact"
    if len(parts) >= 3 and parts[1] == "smaps" and parts[2] in SHOWN_SMAPS:
        return "shown"
    return "exact"


def run_scenario(scenario: Scenario | str, machine) -> dict:
    """Run a scenario once on ``machine`` and return its record. The processes it started
    are ended afterwards, even if the scenario fails."""
    scenario = get(scenario) if isinstance(scenario, str) else scenario
    run = Run(machine)
    try:
        scenario.body(run)
    finally:
        run.close()
    return {
        "scenario": scenario.name,
        "shows": scenario.shows,
        "kernel": getattr(machine.kernel, "name", machine.kernel),
        "steps": run.steps,
    }


def flatten(step: dict) -> dict[str, object]:
    """One step as {path: value}: "outcome", "value", "vmstat.<counter>",
    "<view>.smaps.<field>", "<view>.thp_map", "<view>.pages.<flag>",
    "<view>.pages.mapcount.<n>"."""
    flat: dict[str, object] = {"outcome": step["outcome"], "value": step["value"]}
    flat.update({f"vmstat.{k}": v for k, v in step["vmstat"].items()})
    for view, seen in step["views"].items():
        flat.update({f"{view}.smaps.{k}": v for k, v in seen["smaps"].items()})
        flat[f"{view}.thp_map"] = seen["thp_map"]
        for flag, value in seen["pages"].items():
            if flag == "mapcount" and value is not None:
                flat.update({f"{view}.pages.mapcount.{n}": pages for n, pages in value.items()})
            else:
                flat[f"{view}.pages.{flag}"] = value
    return flat


def lookup(flat: dict[str, object], path: str):
    """The value of ``path`` in a flattened step. Absent means: a counter that did not
    move, or no pages with that mapcount (unless the mapcounts were unreadable); anything
    else absent is unknown (None)."""
    if path in flat:
        return flat[path]
    if path.startswith("vmstat."):
        return 0
    if ".pages.mapcount." in path:
        whole = path.rsplit(".", 1)[0]
        return None if whole in flat and flat[whole] is None else 0
    return None


AGREE, DIFFER, UNAVAILABLE, SHOWN = "agree", "differ", "unavailable", "shown"


def verdict(path: str, a, b) -> str:
    """How two values of one field compare, as the field is judged (``judgement``).
    A value one side could not read (None; '?' in a thp_map) is "unavailable": neither
    agreement nor disagreement. An outcome or a read value of None is a real value."""
    kind = judgement(path)
    if kind == "shown":
        return SHOWN
    if path in ("outcome", "value"):
        return AGREE if a == b else DIFFER
    if a is None or b is None:
        return AGREE if a is b else UNAVAILABLE
    if path.endswith(".thp_map") and "?" in a + b:
        known_equal = len(a) == len(b) and all(x == y or "?" in (x, y) for x, y in zip(a, b, strict=True))
        return UNAVAILABLE if known_equal else DIFFER
    if kind == "tolerant":
        return AGREE if abs(a - b) <= TOLERANCE else DIFFER
    return AGREE if a == b else DIFFER


def step_verdicts(a: dict, b: dict):
    """(path, value in a, value in b, verdict) for every field of two steps."""
    fa, fb = flatten(a), flatten(b)
    for path in fa.keys() | fb.keys():
        va, vb = lookup(fa, path), lookup(fb, path)
        yield path, va, vb, verdict(path, va, vb)


def steps_agree(a: dict, b: dict) -> bool:
    """Whether two records of the same scenario agree on every judged field."""
    if len(a["steps"]) != len(b["steps"]):
        return False
    return not any(
        v == DIFFER for sa, sb in zip(a["steps"], b["steps"], strict=True) for *_, v in step_verdicts(sa, sb)
    )


def _consensus(values: list):
    """The value most runs saw; for numbers without a majority, the median."""
    value, votes = Counter(map(repr, values)).most_common(1)[0]
    if votes * 2 > len(values) or not all(isinstance(v, int) for v in values):
        return next(v for v in values if repr(v) == value)
    return int(statistics.median(values))


def _unsettled(path: str, values: list) -> bool:
    """Whether runs that saw ``values`` disagree beyond what the field's judgement allows."""
    kind = judgement(path)
    if kind == "shown" or len({repr(v) for v in values}) == 1:
        return False
    if kind == "tolerant" and None not in values:
        return max(values) - min(values) > TOLERANCE
    return True


def merge(records: list[dict]) -> dict:
    """Merge runs of one scenario: each field takes the value most runs saw. The merged
    record lists under "unsettled" the judged fields on which the runs differed."""
    merged = dict(records[0], runs=len(records), unsettled=[])
    steps = []
    for i, step in enumerate(records[0]["steps"]):
        flats = [flatten(r["steps"][i]) for r in records]
        new = {k: step[k] for k in ("label", "call")}
        new["outcome"] = _consensus([f["outcome"] for f in flats])
        new["value"] = _consensus([f["value"] for f in flats])
        new["vmstat"] = {}
        for name in sorted({k[7:] for f in flats for k in f if k.startswith("vmstat.")}):
            values = [f.get(f"vmstat.{name}", 0) for f in flats]
            value = values[0] if None in values else _consensus(values)
            if value != 0:
                new["vmstat"][name] = value
            if _unsettled(f"vmstat.{name}", values):
                merged["unsettled"].append(f"{step['label']}: vmstat.{name} {values}")
        new["views"] = {}
        for view in step["views"]:
            seen = [r["steps"][i]["views"].get(view) for r in records]
            new["views"][view] = _merge_view([s for s in seen if s is not None], step["label"], view, merged)
        steps.append(new)
    merged["steps"] = steps
    return merged


def _merge_view(seen: list[dict], label: str, view: str, merged: dict) -> dict:
    def pick(values, path):
        if _unsettled(path, values):
            merged["unsettled"].append(f"{label}: {path} {values}")
        return _consensus(values)

    return {
        "smaps": {k: pick([s["smaps"][k] for s in seen], f"{view}.smaps.{k}") for k in seen[0]["smaps"]},
        "thp_map": pick([s["thp_map"] for s in seen], f"{view}.thp_map"),
        "pages": {k: pick([s["pages"][k] for s in seen], f"{view}.pages.{k}") for k in seen[0]["pages"]},
    }


def record(scenario: Scenario | str, make_machine: Callable[[], object], runs: int = 1, max_runs: int = 5) -> dict:
    """Run a scenario ``runs`` times on fresh machines and merge the runs. With ``runs`` > 1,
    keep running (up to ``max_runs``) until the last run agrees on every judged field with
    an earlier one, so a run disturbed by other processes is outvoted."""
    records = [run_scenario(scenario, make_machine()) for _ in range(runs)]
    while runs > 1 and len(records) < max_runs and not any(steps_agree(records[-1], r) for r in records[:-1]):
        records.append(run_scenario(scenario, make_machine()))
    return merge(records)


