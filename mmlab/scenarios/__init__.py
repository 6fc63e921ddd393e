"""Named scenarios, written once against the facade, run on the model or the live kernel.

A scenario is a function of a ``Run``: it spawns processes, maps regions and makes calls,
each through ``run.step(label, call, *args)``. The run records every step as plain data:

    {"label": "MADV_PAGEOUT", "call": "madvise(a, 64 MiB, MADV_PAGEOUT)",
     "outcome": None or an errno name ("EINVAL"), "value": what the call returned (read),
     "vmstat": {counter: delta over the call},
     "views": {"p": {"smaps": {field: kB}, "thp_map": "HH..", "pages": {flag: pages}}}}

``views`` has one entry per watched region (a process and a range): its smaps totals over
the VMAs of the range, its thp_map and a summary of its page flags (``summarize_pages``).
Records are JSON-able, so they can be stored (tests/data/host-*/) and compared field by
field (mmlab.live.compare).

``record()`` runs a scenario one or more times and merges the runs: /proc/vmstat is
global, so on a live kernel other processes add noise that differs from run to run,
while what the scenario itself causes repeats.

The package: ``run`` (Run, the recording), ``catalogue`` (the scenarios, ``SCENARIOS``,
``get``) and ``records`` (running into records, merging runs, comparing records).
"""

from .catalogue import SCENARIOS, get
from .records import (
    AGREE,
    DIFFER,
    SHOWN,
    TOLERANCE,
    UNAVAILABLE,
    flatten,
    judgement,
    lookup,
    merge,
    record,
    run_scenario,
    step_verdicts,
    steps_agree,
    verdict,
)
from .run import Run, Scenario, summarize_pages

__all__ = [
    "AGREE", "DIFFER", "SCENARIOS", "SHOWN", "TOLERANCE", "UNAVAILABLE", "Run", "Scenario", "flatten", "get",
    "judgement", "lookup", "merge", "record", "run_scenario", "step_verdicts", "steps_agree", "summarize_pages",
    "verdict",
]
