"""``mmlab live``: run the scenarios on this machine's kernel, compare them with a model
profile field by field, fingerprint the kernel against every profile, and time reclaim.

Prints a report, or with ``--json`` one JSON document for machines. ``--record DIR``
also stores the host records as expected values (see mmlab.live.evidence).
"""

from __future__ import annotations

import dataclasses
import json
import sys

from .. import scenarios
from ..uapi import MiB

DEFAULT_PROFILE = "6.18.44"
SHOWN_FIELDS = 3  # deciding fields printed per scenario (--json has them all)


def configure(parser) -> None:
    parser.add_argument(
        "--profile", default=DEFAULT_PROFILE, help="model profile to compare with (default %(default)s)"
    )
    parser.add_argument(
        "--scenario", action="append", metavar="NAME", help="run only this scenario (repeatable; default: all)"
    )
    parser.add_argument(
        "--runs", type=int, default=2, help="live runs per scenario, merged to outvote noise (default %(default)s)"
    )
    parser.add_argument("--no-timing", action="store_true", help="skip the reclaim timings")
    parser.add_argument("--timing-mib", type=int, default=1024, help="size timed, in MiB (at most 1024)")
    parser.add_argument("--timing-repeats", type=int, default=5, help="repetitions per timing (median reported)")
    parser.add_argument("--record", metavar="DIR", help="also store the host records as JSON files in DIR")
    parser.add_argument("--all-fields", action="store_true", help="list every compared field, not only differences")
    parser.add_argument("--json", action="store_true", help="print one JSON document instead of the report")


def _check_args(args) -> str | None:
    from ..kernels import PROFILES

    if args.profile not in PROFILES:
        return f"unknown profile {args.profile!r}; choose one of: {', '.join(PROFILES)}"
    for name in args.scenario or ():
        if name not in scenarios.SCENARIOS:
            return f"unknown scenario {name!r}; known: {', '.join(scenarios.SCENARIOS)}"
    if not 1 <= args.timing_mib <= 1024:
        return "--timing-mib must be between 1 and 1024 (the live lab maps at most 1 GiB at a time)"
    if args.runs < 1 or args.timing_repeats < 1:
        return "--runs and --timing-repeats must be at least 1"
    return None


def run(args) -> int:
    from ..kernels import PROFILES
    from . import compare, env, evidence, timing
    from .machine import Machine

    problem = _check_args(args)
    if problem:
        print(f"mmlab live: {problem}", file=sys.stderr)
        return 2
    host_env = env.probe()
    if not host_env.linux:
        print(f"mmlab live: {host_env.lacking('linux')}", file=sys.stderr)
        return 1
    say = (lambda *a, **k: None) if args.json else print
    say(f"mmlab live: kernel {host_env.release}, THP {host_env.thp}, swap {host_env.swap_kb or 0} kB")
    for line in host_env.problems():
        say(f"  note: {line}")

    names = args.scenario or list(scenarios.SCENARIOS)
    skipped = {}
    host = {}
    for name in names:
        reason = next((r for r in map(host_env.lacking, scenarios.get(name).needs) if r), None)
        if reason:
            skipped[name] = reason
            continue
        host[name] = scenarios.record(name, Machine, runs=args.runs)
    if args.record:
        for path in evidence.save(args.record, host, host_env):
            say(f"  recorded {path}")

    predictions = compare.predict(host, PROFILES, host_env)
    fp = compare.fingerprint(host, predictions)
    rows = {name: compare.compare(predictions[args.profile][name], rec) for name, rec in host.items()}
    timings = []
    if not args.no_timing and host_env.lacking("thp") is None and host_env.pageout:
        with Machine() as machine:
            timings = timing.measure(machine, args.timing_mib * MiB, args.timing_repeats)

    if args.json:
        print(json.dumps(_document(host_env, args.profile, host, predictions, rows, skipped, fp, timings), indent=1))
    else:
        _print_report(args, host, rows, skipped, fp, timings)
    differing = sum(any(r.verdict == compare.DIFFER for r in rs) for rs in rows.values())
    return 0 if differing == 0 else 1


def _print_report(args, host, rows, skipped, fp, timings) -> None:
    from . import compare, timing

    print(f"\nScenarios: the host against the model's {args.profile} profile")
    for name, rec in host.items():
        differ = [r for r in rows[name] if r.verdict == compare.DIFFER]
        judged = [r for r in rows[name] if r.verdict in (compare.AGREE, compare.DIFFER)]
        state = "agree" if not differ else f"DIFFER in {len(differ)} of {len(judged)} fields"
        print(f"  {name:<24} {state:<28} {rec['shows']}")
        if rec["unsettled"]:
            print(f"      {rec['runs']} runs disagreed on: {'; '.join(rec['unsettled'])}")
        for line in compare.format_rows(rows[name] if args.all_fields else differ):
            print(f"      {line}")
    for name, reason in skipped.items():
        print(f"  {name:<24} skipped: {reason}")

    print(f"\nFingerprint: the host behaves like {', '.join(fp.profiles) or 'no single profile'}")
    for d in fp.decisions:
        shown = d.fields[:SHOWN_FIELDS]
        more = f" (and {len(d.fields) - len(shown)} more)" if len(d.fields) > len(shown) else ""
        print(f"  {d.scenario}: decided by {'; '.join(f'{label}: {path}' for label, path in shown)}{more}")
        for values, profiles in d.groups.items():
            mark = "<- host" if set(profiles) & set(d.matches) else ""
            print(f"      {', '.join(profiles):<28} {', '.join(map(repr, values[:SHOWN_FIELDS]))} {mark}")
    totals = {p: sum(v.values()) for p, v in fp.agreement.items()}
    print("  fields differing from the host, per profile: " + ", ".join(f"{p} {n}" for p, n in totals.items()))

    if timings:
        print(f"\nTiming: reclaim of {timings[0].size // MiB} MiB, median of {len(timings[0].seconds)} runs")
        for line in timing.report(timings):
            print(line)


def _document(host_env, profile, host, predictions, rows, skipped, fp, timings) -> dict:
    return {
        "environment": dataclasses.asdict(host_env),
        "problems": host_env.problems(),
        "profile": profile,
        "scenarios": {
            name: {
                "host": rec,
                "model": predictions[profile][name],
                "rows": [dataclasses.asdict(r) for r in rows[name]],
            }
            for name, rec in host.items()
        },
        "skipped": skipped,
        "fingerprint": {
            "profiles": list(fp.profiles),
            "decisions": [
                {
                    "scenario": d.scenario,
                    "fields": [list(f) for f in d.fields],
                    "groups": [{"values": list(v), "profiles": list(p)} for v, p in d.groups.items()],
                    "host": list(d.host),
                    "matches": list(d.matches),
                }
                for d in fp.decisions
            ],
            "differing_fields": fp.agreement,
        },
        "timing": [dataclasses.asdict(t) | {"median": t.median, "complete": t.complete} for t in timings],
    }
