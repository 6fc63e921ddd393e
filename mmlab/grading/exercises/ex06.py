"""Exercise 6.3's tools: make a sequence of calls on one THP, and compare 6.11 with 6.11-v6."""

from __future__ import annotations

from mmlab import MADV_FREE, MADV_PAGEOUT, MLOCK_ONFAULT, PAGE_SIZE, Machine

from .model import THP, errno_name, thp_process

V6_CALLS = (
    "MADV_FREE",
    "mlock",
    "mlock2 ONFAULT",
    "munlock",
    "mlock first half",
    "write",
    "fork",
    "child mlock2 ONFAULT",
    "child exit",
    "LRU reclaim",
    "MADV_PAGEOUT",
)
PROBE = ("LRU reclaim", "MADV_PAGEOUT")
SEARCH_DEPTH = 2


def run_calls(kernel: str, calls) -> dict:
    """One THP written with 7, then ``calls`` (names from V6_CALLS) and the reclaim PROBE.
    Returns what the process can see afterwards, what each call returned, and whether
    try_to_unmap_one() restored the mlock of a large folio (only the v6 condition can)."""
    unknown = [c for c in calls if c not in V6_CALLS]
    if unknown:
        raise ValueError(f"unknown call(s) {unknown}; the calls are {', '.join(V6_CALLS)}")
    m = Machine(kernel=kernel)
    p, a = thp_process(m)
    children = []
    results = []
    for call in (*calls, *PROBE):
        results.append(_call(m, p, a, children, call))
    page = p.pagemap(a, PAGE_SIZE)[0]
    restored = any(
        e.function == "try_to_unmap_one" and "restored the mlock" in e.message and e.folio["order"] for e in m.trace
    )
    return {
        "results": results[: len(calls)],
        "thp_map": p.thp_map(a, THP),
        "reads": p.read(a),
        "mlocked": page.mlocked,
        "unevictable": page.unevictable,
        "Rss": p.smaps()["Rss"],
        "restored a large folio's mlock in try_to_unmap_one": restored,
    }


def _call(m, p, a, children, call: str) -> str:
    """Make one call of V6_CALLS: "ok", the errno name it failed with, or "no child"."""
    child_calls = {"child mlock2 ONFAULT", "child exit"}
    if call in child_calls and not children:
        return "no child"
    make = {
        "MADV_FREE": lambda: p.madvise(a, THP, MADV_FREE),
        "MADV_PAGEOUT": lambda: p.madvise(a, THP, MADV_PAGEOUT),
        "mlock": lambda: p.mlock(a, THP),
        "mlock2 ONFAULT": lambda: p.mlock2(a, THP, MLOCK_ONFAULT),
        "munlock": lambda: p.munlock(a, THP),
        "mlock first half": lambda: p.mlock(a, THP // 2),
        "write": lambda: p.write(a, 1, value=9),
        "fork": lambda: children.append(p.fork()),
        "LRU reclaim": m.reclaim,
        "child mlock2 ONFAULT": lambda: children[-1].mlock2(a, THP, MLOCK_ONFAULT),
        "child exit": lambda: children.pop().exit(),
    }[call]
    return errno_name(make)


def try_v6(calls) -> None:
    """Run ``calls`` on 6.11 and on 6.11-v6, each followed by the reclaim PROBE; print both."""
    runs = {kernel: run_calls(kernel, calls) for kernel in ("6.11", "6.11-v6")}
    for kernel, seen in runs.items():
        print(f"{kernel:8} {seen}")
    print("the v6 condition changed something" if runs["6.11"] != runs["6.11-v6"] else "no difference")
