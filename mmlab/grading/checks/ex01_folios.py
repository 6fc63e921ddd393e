"""Checks of exercises/01-folios-and-thp.ipynb (lecture 1: pages, folios and THP).

* ``ex01-thp-counters`` / ``ex01-thp-layout``: predict what a short program does to the THP
  counters and to its page tables (a huge-zero-page read, a partial mprotect, a partial
  MADV_PAGEOUT), on the kernel the learner's variant names.
* ``ex01-counts`` (+ hidden ``ex01-counts-edges``): a function giving a THP's refcount and
  mapcounts from how it is mapped and how many of its pages are pinned.
"""

from __future__ import annotations

from mmlab import MADV_DONTNEED, MADV_HUGEPAGE, MADV_PAGEOUT, PAGE_SIZE, PROT_READ, Machine
from mmlab.include.mm import folio_entire_mapcount, folio_mapcount

from ..exercises.model import THP, folio_at, pte_map, thp_process
from ..registry import register, register_variant
from ._support import section

EVENTS = "ex01-thp-events"
COUNTERS = ("thp_fault_alloc", "thp_split_pmd", "thp_split_page")


@register_variant(EVENTS)
def events_variant(rng):
    thps = rng.randrange(4, 8)
    read_first, protected, paged = rng.sample(range(thps), 3)
    return {
        "kernel": rng.choice(["6.10", "6.18.44"]),
        "thps": thps,
        "read_first": read_first,
        "written_page": rng.randrange(512),
        "protected": protected,
        "protected_pages": rng.randrange(1, 512),
        "paged": paged,
        "paged_page": rng.randrange(512),
    }


def run_events(v):
    """Run the variant's program on a fresh model machine: (machine, process, address)."""
    m = Machine(kernel=v.kernel)
    p = m.spawn()
    a = p.mmap(v.thps * THP)
    p.madvise(a, v.thps * THP, MADV_HUGEPAGE)
    p.read(a + v.read_first * THP)
    for i in range(v.thps):
        if i != v.read_first:
            p.write(a + i * THP, THP, value=7)
    p.write(a + v.read_first * THP + v.written_page * PAGE_SIZE, 1, value=5)
    p.mprotect(a + v.protected * THP, v.protected_pages * PAGE_SIZE, PROT_READ)
    p.madvise(a + v.paged * THP + v.paged_page * PAGE_SIZE, PAGE_SIZE, MADV_PAGEOUT)
    return m, p, a


def _counters(v):
    m, _, _ = run_events(v)  # a fresh machine's counters start at 0
    return {name: m.vmstat[name] for name in COUNTERS}


def _one_less_split(v):
    answer = _counters(v)
    answer["thp_split_pmd"] -= 1
    return answer


def _zero_page_faulted_a_thp(v):
    """The answer of someone who took the read of the huge-zero-page slot for a THP fault."""
    answer = _counters(v)
    answer["thp_fault_alloc"] += 1
    return answer


@register(
    "ex01-thp-counters",
    points=2,
    exercise=EVENTS,
    expects=(
        "a dict with the increase of thp_fault_alloc, thp_split_pmd and thp_split_page over your "
        "whole program ({thps} slots, kernel {kernel})"
    ),
    section=section("1.2", "1.4", "1.6"),
    mistakes={
        "Count every PMD split: the mprotect() that cuts a THP, the MADV_PAGEOUT of part of a "
        "PMD-mapped THP (its PMD is split before the folio), and, on 6.10, the write into the "
        "huge zero page.": _one_less_split,
        "A read maps the huge zero page, which is no THP fault; only a write allocates a THP.": (
            _zero_page_faulted_a_thp
        ),
    },
)
def thp_counters(v):
    return _counters(v)


@register(
    "ex01-thp-layout",
    points=1,
    exercise=EVENTS,
    expects=(
        "a dict with the thp_map string of all {thps} slots after your program, one character per "
        "2 MiB (uapi.SLOT_LEGEND), and the AnonHugePages total in kB"
    ),
    section=section("1.4", "1.6"),
    mistakes={
        "AnonHugePages counts only memory mapped by a huge PMD: a THP mapped by PTEs (T) does not count.": lambda v: {
            **_layout(v),
            "AnonHugePages": _layout(v)["AnonHugePages"] + 2048,
        },
    },
)
def thp_layout(v):
    return _layout(v)


def _layout(v):
    _, p, a = run_events(v)
    return {"thp_map": p.thp_map(a, v.thps * THP), "AnonHugePages": p.smaps()["AnonHugePages"]}


# ---------------------------------------------------------------- refcount and mapcounts

COUNTS = "ex01-counts"


@register_variant(COUNTS)
def counts_variant(rng):
    n, m = rng.randrange(2, 512), rng.randrange(2, 512)
    return {
        "cases": [
            ("pmd", 0),
            ("pmd", rng.randrange(1, 512)),
            (512, 0),
            (n, 0),
            (m, rng.randrange(1, m + 1)),
            (512, rng.randrange(1, 512)),
        ]
    }


def thp_counts(mapping, pinned):
    """The counters of one THP in one process: mapped by its PMD (``mapping == "pmd"``) or by
    PTEs for its last ``mapping`` pages, with its last ``pinned`` pages pinned."""
    if mapping != "pmd" and not (isinstance(mapping, int) and 1 <= mapping <= 512):
        raise ValueError(f"mapping is 'pmd' or a number of pages from 1 to 512, not {mapping!r}")
    m = Machine(kernel="6.11")
    p, a = thp_process(m)
    if mapping != "pmd":
        pte_map(p, a)
        if mapping < 512:
            p.madvise(a, (512 - mapping) * PAGE_SIZE, MADV_DONTNEED)
    if pinned:
        p.pin(a + THP - pinned * PAGE_SIZE, pinned * PAGE_SIZE)
    folio = folio_at(p, a + THP - PAGE_SIZE)
    return {
        "refcount": folio._refcount,
        "mapcount": folio_mapcount(folio),
        "entire_mapcount": folio_entire_mapcount(folio),
        "nr_pages_mapped": folio._nr_pages_mapped,
    }


register(
    COUNTS,
    points=2,
    expects=(
        "a function thp_counts(mapping, pinned) returning a dict with the THP's refcount, mapcount, "
        "entire_mapcount and nr_pages_mapped, where mapping is 'pmd' (one huge PMD) or the number of "
        "the THP's last pages still mapped by PTEs, and pinned is how many of its last pages are pinned"
    ),
    section=section("1.5", "1.6"),
    cases=lambda v: list(v.cases),
)(thp_counts)

register(
    "ex01-counts-edges",
    points=1,
    exercise=COUNTS,
    hidden=True,
    expects="the same function to be right at the edges: one page mapped, every page pinned",
    section=section("1.5", "1.6"),
    cases=lambda v: [(1, 0), (1, 1), ("pmd", 512), (512, 512), (511, 511)],
)(thp_counts)
