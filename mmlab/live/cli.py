"""``mmlab live``: run the scenarios on this machine's kernel, or with ``--kernel`` on
another kernel booted under QEMU (mmlab.live.vm), compare them with a model profile field
by field, fingerprint the kernel against every profile, and time reclaim.

Prints a report, or with ``--json`` one JSON document for machines. ``--record DIR``
also stores the records as expected values (see mmlab.live.evidence).
"""

from __future__ import annotations

import dataclasses
import json
import sys

from .. import scenarios
from ..uapi import MiB

SHOWN_FIELDS = 3  # deciding fields printed per scenario (--json has them all)


def configure(parser) -> None:
    parser.add_argument(
        "--kernel", metavar="KERNEL",
        help="boot this kernel under QEMU and run there: a version of Debian's (6.1, 6.12), a linux-image "
        "package name, a .deb or a vmlinuz path (default: this machine's kernel)",
    )  # fmt: skip
    parser.add_argument(
        "--accel", choices=("auto", "kvm", "tcg"), default="auto",
        help="with --kernel: KVM, CPU emulation (TCG), or KVM where it boots the guest (default %(default)s)",
    )  # fmt: skip
    parser.add_argument(
        "--profile", help="model profile to compare with (default: the newest profile not newer than the kernel)"
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
    parser.add_argument("--record", metavar="DIR", help="also store the records as JSON files in DIR")
    parser.add_argument("--all-fields", action="store_true", help="list every compared field, not only differences")
    parser.add_argument("--json", action="store_true", help="print one JSON document instead of the report")


def _check_args(args) -> str | None:
    from ..kernels import ALL_PROFILES

    if args.profile is not None and args.profile not in ALL_PROFILES:
        return f"unknown profile {args.profile!r}; choose one of: {', '.join(ALL_PROFILES)}"
    for name in args.scenario or ():
        if name not in scenarios.SCENARIOS:
            return f"unknown scenario {name!r}; known: {', '.join(scenarios.SCENARIOS)}"
    if not 1 <= args.timing_mib <= 1024:
        return "--timing-mib must be between 1 and 1024 (the live lab maps at most 1 GiB at a time)"
    if args.runs < 1 or args.timing_repeats < 1:
        return "--runs and --timing-repeats must be at least 1"
    return None


class ThisKernel:
    """This machine's kernel, driven as mmlab.live.vm.VM drives a booted one: ``env``,
    ``record()``, ``measure()``."""

    accel = None

    def __init__(self):
        from .env import LiveUnavailable, probe

        self.env = probe()
        if not self.env.linux:
            raise LiveUnavailable(self.env.lacking("linux"))

    def record(self, name: str, runs: int = 1) -> dict:
        from .machine import Machine

        return scenarios.record(name, Machine, runs=runs)

    def measure(self, size: int, repeats: int) -> list:
        from . import timing
        from .machine import Machine

        with Machine() as machine:
            return timing.measure(machine, size, repeats)

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def run(args) -> int:
    from .env import LiveUnavailable
    from .vm import VM, KernelUnavailable, VMUnavailable

    problem = _check_args(args)
    if problem:
        print(f"mmlab live: {problem}", file=sys.stderr)
        return 2
    say = (lambda *a, **k: print(*a, **k, file=sys.stderr)) if args.json else print
    try:
        kernel = ThisKernel() if args.kernel is None else VM(args.kernel, args.accel, say)
    except (LiveUnavailable, KernelUnavailable, VMUnavailable) as e:
        print(f"mmlab live: {e}", file=sys.stderr)
        return 1
    with kernel:
        try:
            return _run_on(kernel, args, say)
        except VMUnavailable as e:
            print(f"mmlab live: {e}", file=sys.stderr)
            return 1


def _run_on(kernel, args, say) -> int:
    from ..kernels import ALL_PROFILES, profile_for
    from . import compare, evidence

    env = kernel.env
    where = f"under QEMU ({kernel.accel}, booted in {kernel.boot_seconds:.1f} s)" if kernel.accel else "on this machine"
    say(f"mmlab live: kernel {env.release} {where}, THP {env.thp}, swap {env.swap_kb or 0} kB")
    for line in env.problems():
        say(f"  note: {line}")
    args.profile = args.profile or profile_for(env.release, env.version).name

    names = args.scenario or list(scenarios.SCENARIOS)
    skipped = {}
    records = {}
    for name in names:
        reason = next((r for r in map(env.lacking, scenarios.get(name).needs) if r), None)
        if reason:
            skipped[name] = reason
            continue
        records[name] = kernel.record(name, args.runs)
    if args.record:
        for path in evidence.save(args.record, records, env):
            say(f"  recorded {path}")

    predictions = compare.predict(records, ALL_PROFILES, env)
    fp = compare.fingerprint(records, predictions)
    rows = {name: compare.compare(predictions[args.profile][name], rec) for name, rec in records.items()}
    timings = []
    if kernel.accel == "tcg" and not args.no_timing:
        say("  timing skipped: under TCG the CPU is emulated, so reclaim times would measure QEMU, not the kernel")
    elif not args.no_timing and env.lacking("thp") is None and env.pageout:
        timings = kernel.measure(args.timing_mib * MiB, args.timing_repeats)

    if args.json:
        print(json.dumps(_document(kernel, args.profile, records, predictions, rows, skipped, fp, timings), indent=1))
    else:
        _print_report(args, records, rows, skipped, fp, timings)
    differing = sum(any(r.verdict == compare.DIFFER for r in rs) for rs in rows.values())
    return 0 if differing == 0 else 1


def _print_report(args, host, rows, skipped, fp, timings) -> None:
    from . import compare, timing

    print(f"\nScenarios: the kernel against the model's {args.profile} profile")
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

    print(f"\nFingerprint: the kernel behaves like {', '.join(fp.profiles) or 'no single profile'}")
    for d in fp.decisions:
        shown = d.fields[:SHOWN_FIELDS]
        more = f" (and {len(d.fields) - len(shown)} more)" if len(d.fields) > len(shown) else ""
        print(f"  {d.scenario}: decided by {'; '.join(f'{label}: {path}' for label, path in shown)}{more}")
        for values, profiles in d.groups.items():
            mark = "<- kernel" if set(profiles) & set(d.matches) else ""
            print(f"      {', '.join(profiles):<28} {', '.join(map(repr, values[:SHOWN_FIELDS]))} {mark}")
    totals = {p: sum(v.values()) for p, v in fp.agreement.items()}
    print("  fields differing from the kernel, per profile: " + ", ".join(f"{p} {n}" for p, n in totals.items()))

    if timings:
        print(f"\nTiming: reclaim of {timings[0].size // MiB} MiB, median of {len(timings[0].seconds)} runs")
        for line in timing.report(timings):
            print(line)


def _document(kernel, profile, host, predictions, rows, skipped, fp, timings) -> dict:
    return {
        "environment": dataclasses.asdict(kernel.env),
        "problems": kernel.env.problems(),
        "qemu": {"accel": kernel.accel, "boot_seconds": kernel.boot_seconds}
        if kernel.accel
        else None,
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
