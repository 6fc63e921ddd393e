"""Checks of exercises/05-madv-free.ipynb (lecture 5: MADV_FREE).

* ``ex05-mlock-table``: fill in the outcome table of mlock() and MADV_FREE in both orders
  (and MADV_FREE then mlock2(MLOCK_ONFAULT)), for the learner's number of THPs and kernel.
* ``ex05-freed`` (+ hidden ``ex05-freed-more``): a function predicting what MADV_PAGEOUT
  frees of one lazyfree THP, given what happened to it after MADV_FREE (a write, a pin, a
  child, MADV_FREE of half of it only), and what the program reads afterwards.
"""

from __future__ import annotations

from mmlab import MADV_FREE, MADV_PAGEOUT, MLOCK_ONFAULT, PAGE_SIZE, Machine

from ..exercises.model import THP, errno_name, thp_process
from ..learner import hidden_rng
from ..registry import register, register_variant
from ._support import section

# ---------------------------------------------------------------- the table

TABLE = "ex05-mlock-table"
ORDERS = ("mlock, MADV_FREE", "MADV_FREE, mlock", "MADV_FREE, mlock2(MLOCK_ONFAULT)")
COLUMNS = ("second call", "lazyfree", "mlocked", "LazyFree", "MADV_PAGEOUT", "read after munlock and MADV_PAGEOUT")


@register_variant(TABLE)
def table_variant(rng):
    return {
        "kernel": rng.choice(["6.11", "6.15", "6.18.44"]),
        "thps": rng.randrange(1, 5),
        "value": rng.randrange(1, 256),
    }


def table_row(v, order: str) -> dict:
    """One row of the table: the order's two calls on the variant's THPs, then what they left."""
    m = Machine(kernel=v.kernel)
    p, a = thp_process(m, v.thps, value=v.value)
    size = v.thps * THP
    free = (p.madvise, a, size, MADV_FREE)
    lock = {
        "mlock, MADV_FREE": (p.mlock, a, size),
        "MADV_FREE, mlock": (p.mlock, a, size),
        "MADV_FREE, mlock2(MLOCK_ONFAULT)": (p.mlock2, a, size, MLOCK_ONFAULT),
    }[order]
    first, second = (lock, free) if order.startswith("mlock") else (free, lock)
    first[0](*first[1:])
    outcome = errno_name(*second)
    page = p.pagemap(a, PAGE_SIZE)[0]
    row = {
        "second call": outcome,
        "lazyfree": not page.swapbacked,
        "mlocked": page.mlocked,
        "LazyFree": p.smaps()["LazyFree"],
        "MADV_PAGEOUT": errno_name(p.madvise, a, size, MADV_PAGEOUT),
    }
    p.munlock(a, size)
    p.madvise(a, size, MADV_PAGEOUT)
    row["read after munlock and MADV_PAGEOUT"] = p.read(a)
    return row


def mlock_table(v):
    return {order: table_row(v, order) for order in ORDERS}


def _populate_kept_clean(v):
    """The table of someone who thinks mlock() leaves a lazyfree PMD clean."""
    table = mlock_table(v)
    table["MADV_FREE, mlock"] = dict(table["MADV_FREE, mlock2(MLOCK_ONFAULT)"])
    return table


register(
    TABLE,
    points=3,
    expects=(
        "a dict with one row per order ("
        + ", ".join(map(repr, ORDERS))
        + "), each a dict of "
        + ", ".join(map(repr, COLUMNS))
        + ", for your {thps} THP(s) written with {value} on kernel {kernel}"
    ),
    section=section("5.8"),
    mistakes={
        "A plain mlock() populates the range with write faults: it marks the PMD dirty, so the THP "
        "is no longer LazyFree and reclaim keeps its data.": _populate_kept_clean,
    },
)(mlock_table)


# ---------------------------------------------------------------- what MADV_PAGEOUT frees

FREED = "ex05-freed"


def pages_freed(freed, written, pinned, child):
    """One THP written with 7; ``pinned``: one page of it pinned; MADV_FREE of ``freed``
    ("all" or "first half"); ``child``: "none", "alive" (forked after MADV_FREE, still running)
    or "exited" (forked, then exited); the pages in ``written`` written with 9; then
    MADV_PAGEOUT of the whole THP. What pglazyfreed counts, and the bytes read back."""
    if freed not in ("all", "first half") or child not in ("none", "alive", "exited"):
        raise ValueError("freed is 'all' or 'first half'; child is 'none', 'alive' or 'exited'")
    m = Machine(kernel="6.11")
    p, a = thp_process(m, value=7)
    if pinned:
        p.pin(a + THP - PAGE_SIZE, PAGE_SIZE)
    p.madvise(a, THP if freed == "all" else THP // 2, MADV_FREE)
    if child != "none":
        kid = p.fork()
        if child == "exited":
            kid.exit()
    for page in written:
        p.write(a + page * PAGE_SIZE, 1, value=9)
    before = m.vmstat["pglazyfreed"]
    p.madvise(a, THP, MADV_PAGEOUT)
    return {
        "pglazyfreed": m.vmstat["pglazyfreed"] - before,
        "first page": p.read(a),
        "last page": p.read(a + THP - PAGE_SIZE),
    }


def _pages(rng, lo, hi, n):
    return tuple(sorted(rng.sample(range(lo, hi), n)))


@register_variant(FREED)
def freed_variant(rng):
    return {
        "public": [
            ("all", (), False, "none"),
            ("all", _pages(rng, 0, 512, 1), False, "none"),
            ("first half", (), False, "none"),
            ("first half", _pages(rng, 1, 256, 2), False, "none"),
            ("all", (), True, "none"),
            ("all", (), False, "alive"),
            ("all", (), False, "exited"),
        ]
    }


def hidden_cases(v):
    """The hidden check's cases: the same things, coming together."""
    rng = hidden_rng(v)
    return [
        ("first half", (0,) + _pages(rng, 256, 511, 1), False, "none"),
        ("first half", (), True, "none"),
        ("first half", _pages(rng, 1, 256, 3), False, "exited"),
        ("first half", (), False, "alive"),
        ("all", _pages(rng, 256, 512, 2), False, "exited"),
    ]


EXPECTS_FREED = (
    "a function pages_freed(freed, written, pinned, child) returning a dict: 'pglazyfreed' (pages the "
    "MADV_PAGEOUT frees) and the bytes then read at the THP's 'first page' and 'last page'"
)

register(
    FREED,
    points=3,
    expects=EXPECTS_FREED,
    section=section("5.4", "5.5", "5.6", "5.7"),
    cases=lambda v: list(v.public),
)(pages_freed)

register(
    "ex05-freed-more",
    points=2,
    exercise=FREED,
    hidden=True,
    expects=EXPECTS_FREED + ", also when these things come together",
    section=section("5.4", "5.5", "5.6", "5.7"),
    cases=hidden_cases,
)(pages_freed)

__all__ = ["COLUMNS", "ORDERS"]
