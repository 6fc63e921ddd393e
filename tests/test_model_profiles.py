"""What each kernel profile does differently, scenario by scenario.

Every switch in mmlab.kernels.CHANGES has at least one scenario here whose observable
outcome (a /proc/vmstat delta, the THP map, a page flag) differs between the profiles
that have it and those that do not. Each expected value is derived from kernel source
(Debian linux-source 6.12.117, unless said otherwise), from the upstream patches listed in
course/sources.ipynb, or from observations on the host kernel, never by running the model;
the comments name the change and the kernel function the outcome follows.

Profiles, switches on (1) or off (.):

    profile   split_before  v6_mlock  pmd_discard  no_split  sb_iff_dirty  batched  partial  zero_wp  mlock_large
    6.10           1           .           .          .           .           .        .        .          .
    6.11-v6        .           1           1          .           .           .        .        .          .
    6.11           .           .           1          .           .           .        .        .          .
    6.15           .           .           1          1           1           1        .        1          .
    6.18           .           .           1          1           1           1        1        1          1
    6.18.44        .           .           .          .           1           1        1        1          1

    profile   split_zero_subpages  reuse_large_anon
    6.10, 6.11-v6, 6.11    .              .
    6.15, 6.18, 6.18.44    1              1
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import pytest

from mmlab import (
    MADV_COLD,
    MADV_DONTNEED,
    MADV_FREE,
    MADV_HUGEPAGE,
    MADV_NOHUGEPAGE,
    MADV_PAGEOUT,
    MLOCK_ONFAULT,
    PAGE_SIZE,
    PROFILES,
    PROT_READ,
    Machine,
    MiB,
    kernels,
)
from mmlab.debug import check_invariants
from mmlab.kernels import CHANGES
from mmlab.mm.vmscan import folio_isolate_lru, reclaim_pages
from mmlab.state import running

THP = 2 * MiB
COVERED: dict[str, set[str]] = {}  # switch -> the tests below that tell its profiles apart


def covers(*switches):
    """Record that the decorated test distinguishes the profiles by these switches."""

    def mark(test):
        for switch in switches:
            COVERED.setdefault(switch, set()).add(test.__name__)
        return test

    return mark


def delta(machine, call, *args) -> dict:
    """The /proc/vmstat counters ``call`` changed, and by how much."""
    before = dict(machine.vmstat)
    call(*args)
    return {name: value - before[name] for name, value in machine.vmstat.items() if value != before[name]}


def thp_region(machine, size: int = 2 * THP, value: int = 0x5A):
    """A process with ``size`` bytes of MADV_HUGEPAGE memory, written: PMD-mapped THPs."""
    p = machine.spawn()
    a = p.mmap(size)
    p.madvise(a, size, MADV_HUGEPAGE)
    p.write(a, size, value)
    assert p.thp_map(a, size) == "H" * (size // THP)
    return p, a


def first_page(p, a):
    return p.pagemap(a, PAGE_SIZE)[0]


def folio_at(machine, p, a):
    return machine.folios[first_page(p, a).pfn]


@dataclass(frozen=True)
class Reclaimed:
    """What MADV_PAGEOUT (or reclaim driven by hand) left behind, per THP where it counts."""

    thp_split_pmd: int
    slots: str  # thp_map of the region afterwards
    swapbacked: bool | None = None  # PG_swapbacked of the THP afterwards (None: it is gone)


def assert_table_covers_every_profile(table: dict) -> None:
    assert set(table) == set(PROFILES), "each scenario states the outcome for every profile"


# ---------------------------------------------------------------- a clean lazyfree THP

# MADV_FREE, then MADV_PAGEOUT of 2 PMD-mapped THPs (4 MiB). All profiles free every page
# (pglazyfreed +1024, nothing left mapped, no folio split); they differ in how:
# - 6.10: try_to_unmap_one() calls split_huge_pmd_address() before its walk (the code
#   29e847d2ade3 removed), then discards PTE by PTE: thp_split_pmd +1 per THP, and the first
#   PTE discard leaves the folio partly mapped, so __folio_remove_rmap() queues it with
#   deferred_split_folio(): thp_deferred_split_page +1 per THP.
# - 6.11 .. 6.18: unmap_huge_pmd_locked() -> __discard_anon_folio_pmd_locked() frees the THP
#   at PMD level (735ecdfaf4e8): no split, no deferred split.
# - 6.18.44: the Nov 2026 stable fix "mm/rmap: don't discard lazyfree THPs at PMD level"
#   removed that call (6.12.117 mm/rmap.c has no caller of unmap_huge_pmd_locked()), so the
#   TTU_SPLIT_HUGE_PMD branch splits the PMD (split_huge_pmd_locked()), then one batched
#   PTE discard (354dffd29575) removes all 512 mappings at once: thp_split_pmd +1 per THP,
#   no deferred split. Seen on the host: +32 for 32 THPs (course/sources.ipynb §7).
CLEAN_LAZYFREE = {
    "6.10": {"thp_split_pmd": 2, "thp_deferred_split_page": 2},
    "6.11-v6": {},
    "6.11": {},
    "6.15": {},
    "6.18": {},
    "6.18.44": {"thp_split_pmd": 2},
}


@covers("split_pmd_before_walk", "pmd_lazyfree_discard")
@pytest.mark.parametrize("kernel", sorted(PROFILES))
def test_reclaiming_a_clean_lazyfree_thp(kernel):
    assert_table_covers_every_profile(CLEAN_LAZYFREE)
    m = Machine(kernel=kernel, trace=False)
    p, a = thp_region(m)
    p.madvise(a, 2 * THP, MADV_FREE)
    changed = delta(m, p.madvise, a, 2 * THP, MADV_PAGEOUT)
    assert changed.get("pglazyfreed") == 1024
    assert changed.get("thp_split_page", 0) == 0
    split_counters = {k: v for k, v in changed.items() if k in ("thp_split_pmd", "thp_deferred_split_page")}
    assert split_counters == CLEAN_LAZYFREE[kernel]
    assert p.thp_map(a, 2 * THP) == "--" and p.smaps()["Rss"] == 0
    assert p.read(a) == 0  # discarded: a fresh zero page
    check_invariants(m)


# ---------------------------------------------------------------- written again after MADV_FREE

# MADV_FREE, a write to each THP (the hardware sets the PMD dirty bit; no fault), then
# MADV_PAGEOUT. Nothing is freed anywhere (pglazyfreed 0, data kept); the folio ends up
# PG_swapbacked again ("nr_lazyfree_fail") everywhere; the PMD is split or not:
# - 6.10: split up front; the PTE path finds the dirty bit and sets swapbacked.
# - 6.11: __discard_anon_folio_pmd_locked() returns false for a dirty PMD without side
#   effects (the v8 fold-in "don't unmark lazyfree in unmap_huge_pmd_locked"), so the
#   TTU_SPLIT_HUGE_PMD branch splits and the PTE path sets swapbacked.
# - 6.15/6.18: "mm: avoid splitting pmd for lazyfree pmd-mapped THP in try_to_unmap"
#   (20250214093015.51024-5): the dirty PMD makes the folio dirty, it is set swapbacked at
#   PMD level and the walk aborts: no split.
# - 6.18.44: no PMD discard, so split, then the PTE path: swapbacked (host: +32 splits,
#   swapbacked=1 for 32 THPs, course/sources.ipynb §7).
REDIRTIED = {
    "6.10": Reclaimed(thp_split_pmd=2, slots="TT", swapbacked=True),
    "6.11-v6": Reclaimed(thp_split_pmd=2, slots="TT", swapbacked=True),
    "6.11": Reclaimed(thp_split_pmd=2, slots="TT", swapbacked=True),
    "6.15": Reclaimed(thp_split_pmd=0, slots="HH", swapbacked=True),
    "6.18": Reclaimed(thp_split_pmd=0, slots="HH", swapbacked=True),
    "6.18.44": Reclaimed(thp_split_pmd=2, slots="TT", swapbacked=True),
}


@covers("pmd_lazyfree_no_split", "pmd_lazyfree_discard")
@pytest.mark.parametrize("kernel", sorted(PROFILES))
def test_reclaiming_a_lazyfree_thp_written_again(kernel):
    assert_table_covers_every_profile(REDIRTIED)
    m = Machine(kernel=kernel, trace=False)
    p, a = thp_region(m)
    p.madvise(a, 2 * THP, MADV_FREE)
    p.write(a, PAGE_SIZE, 0x33)
    p.write(a + THP, PAGE_SIZE, 0x44)
    changed = delta(m, p.madvise, a, 2 * THP, MADV_PAGEOUT)
    expected = REDIRTIED[kernel]
    assert changed.get("thp_split_pmd", 0) == expected.thp_split_pmd
    assert changed.get("pglazyfreed", 0) == 0 and changed.get("thp_split_page", 0) == 0
    assert p.thp_map(a, 2 * THP) == expected.slots
    assert first_page(p, a).swapbacked is expected.swapbacked
    assert first_page(p, a + THP).swapbacked is expected.swapbacked
    assert (p.read(a), p.read(a + PAGE_SIZE), p.read(a + THP)) == (0x33, 0x5A, 0x44)
    check_invariants(m)


# ---------------------------------------------------------------- pinned while lazyfree

# MADV_FREE, then a GUP pin on one page (an extra folio reference; FOLL_PIN without
# FOLL_TOUCH does not dirty the PMD: pin_user_pages() in mm/gup.c), then MADV_PAGEOUT. The
# refcount check ("the only refs must be one from isolation plus the rmaps") fails
# everywhere, so nothing is freed; the profiles differ in the split and in PG_swapbacked:
# - 6.10: split up front; the PTE path sees refcount 514 != 1 + 512 and, before 6.15, sets
#   swapbacked on any failure (6.12.117 try_to_unmap_one(): set_pte_at(), then
#   folio_set_swapbacked() unless VM_DROPPABLE).
# - 6.11: __discard_anon_folio_pmd_locked() restores the PMD (refcount 3 != 1 + 1), the
#   TTU_SPLIT_HUGE_PMD branch splits, and the PTE path sets swapbacked as in 6.10.
# - 6.15/6.18: the PMD is restored and the walk aborts without splitting; "mm: set folio
#   swapbacked iff folios are dirty in try_to_unmap_one" (20250214093015.51024-2): a clean
#   folio with an extra reference stays lazyfree.
# - 6.18.44: split (no PMD discard), batched PTE check fails on the refcount, PTEs restored,
#   the folio is clean so it stays lazyfree.
PINNED = {
    "6.10": Reclaimed(thp_split_pmd=1, slots="T", swapbacked=True),
    "6.11-v6": Reclaimed(thp_split_pmd=1, slots="T", swapbacked=True),
    "6.11": Reclaimed(thp_split_pmd=1, slots="T", swapbacked=True),
    "6.15": Reclaimed(thp_split_pmd=0, slots="H", swapbacked=False),
    "6.18": Reclaimed(thp_split_pmd=0, slots="H", swapbacked=False),
    "6.18.44": Reclaimed(thp_split_pmd=1, slots="T", swapbacked=False),
}


@covers("pmd_lazyfree_no_split", "swapbacked_only_if_dirty", "pmd_lazyfree_discard")
@pytest.mark.parametrize("kernel", sorted(PROFILES))
def test_reclaiming_a_pinned_lazyfree_thp(kernel):
    assert_table_covers_every_profile(PINNED)
    m = Machine(kernel=kernel, trace=False)
    p, a = thp_region(m, THP)
    p.madvise(a, THP, MADV_FREE)
    pin = p.pin(a + 5 * PAGE_SIZE)
    changed = delta(m, p.madvise, a, THP, MADV_PAGEOUT)
    expected = PINNED[kernel]
    assert changed.get("thp_split_pmd", 0) == expected.thp_split_pmd
    assert changed.get("pglazyfreed", 0) == 0
    assert p.thp_map(a, THP) == expected.slots
    assert first_page(p, a).swapbacked is expected.swapbacked
    assert p.read(a + 5 * PAGE_SIZE) == 0x5A
    check_invariants(m)
    pin.release()
    check_invariants(m)


# A small lazyfree folio with a pin isolates the same switch without any THP: before 6.15
# a refcount mismatch in the PTE path sets PG_swapbacked; from 6.15 only a dirty folio does.
SMALL_PINNED_SWAPBACKED = {"6.10": True, "6.11-v6": True, "6.11": True,
                           "6.15": False, "6.18": False, "6.18.44": False}


@covers("swapbacked_only_if_dirty")
@pytest.mark.parametrize("kernel", sorted(PROFILES))
def test_reclaiming_a_pinned_small_lazyfree_folio(kernel):
    assert_table_covers_every_profile(SMALL_PINNED_SWAPBACKED)
    m = Machine(kernel=kernel, trace=False)
    p = m.spawn()
    a = p.mmap(4 * PAGE_SIZE)
    p.write(a, 4 * PAGE_SIZE, 9)
    p.madvise(a, 4 * PAGE_SIZE, MADV_FREE)
    pin = p.pin(a)
    changed = delta(m, p.madvise, a, 4 * PAGE_SIZE, MADV_PAGEOUT)
    assert changed.get("pglazyfreed") == 3  # the three unpinned pages go
    assert first_page(p, a).swapbacked is SMALL_PINNED_SWAPBACKED[kernel]
    assert p.read(a) == 9 and p.read(a + PAGE_SIZE) == 0
    pin.release()
    check_invariants(m)


# ---------------------------------------------------------------- a PTE-mapped lazyfree THP

# A THP mapped by 512 PTEs (its PMD was split when a VMA boundary was put inside it and
# taken away again), MADV_FREE'd whole and reclaimed. Every profile frees it whole
# (pglazyfreed +512, no folio split); they differ in how many PTEs go at a time:
# - 6.10 .. 6.11: one PTE per try_to_unmap_one() step; after the first, the folio is partly
#   mapped and deferred_split_folio() counts thp_deferred_split_page.
# - 6.15+: "mm: support batched unmap for lazyfree large folios during reclamation"
#   (354dffd29575): folio_unmap_pte_batch() covers all 512 PTEs, one rmap update, so the
#   folio is never partly mapped.
PER_PTE = {"6.10": True, "6.11-v6": True, "6.11": True, "6.15": False, "6.18": False, "6.18.44": False}


def pte_mapped_thp(m):
    """A whole THP mapped by PTEs in one VMA: split the VMA inside the THP (which splits
    its PMD: vma_adjust_trans_huge()), then merge the VMA back."""
    p, a = thp_region(m, THP)
    p.madvise(a, PAGE_SIZE, MADV_NOHUGEPAGE)
    p.madvise(a, PAGE_SIZE, MADV_HUGEPAGE)
    assert len(p.mm.vmas) == 1 and p.thp_map(a, THP) == "T"
    return p, a


@covers("batched_lazyfree_unmap")
@pytest.mark.parametrize("kernel", sorted(PROFILES))
def test_reclaiming_a_pte_mapped_lazyfree_thp(kernel):
    assert_table_covers_every_profile(PER_PTE)
    m = Machine(kernel=kernel, trace=True)
    p, a = pte_mapped_thp(m)
    p.madvise(a, THP, MADV_FREE)
    m.clear_trace()
    changed = delta(m, p.madvise, a, THP, MADV_PAGEOUT)
    assert changed.get("pglazyfreed") == 512 and changed.get("thp_split_page", 0) == 0
    assert changed.get("thp_split_pmd", 0) == 0  # nothing PMD-mapped to split
    assert changed.get("thp_deferred_split_page", 0) == (1 if PER_PTE[kernel] else 0)
    discards = [e.details["nr_pages"] for e in m.trace
                if e.function == "try_to_unmap_one" and "nr_pages" in e.details]
    assert discards == ([1] * 512 if PER_PTE[kernel] else [512])
    assert p.thp_map(a, THP) == "-"
    check_invariants(m)


# A lazyfree THP mapped by PTEs whose VMA is then cut in two (mprotect of its second half),
# reclaimed by memory pressure (LRU reclaim does not split it first, as MADV_PAGEOUT would).
# The rmap walk visits the first VMA, then the second:
# - 6.10 .. 6.11: no batching, one PTE per step.
# - 6.15.0: can_batch_unmap_folio_ptes() (354dffd29575) accepts the whole folio, since all
#   512 PTEs follow each other in one table; nothing checks the VMA's end, so the one batch
#   also clears the second VMA's 256 PTEs (it ignores write bits, as folio_pte_batch() did
#   without FPB_RESPECT_WRITE).
# - 6.16+ (and 6.15.7): folio_unmap_pte_batch() (ddd05742b45b) caps a batch at the VMA's
#   end: 256 PTEs in each VMA.
PARTIAL_BATCH = {"6.10": [1] * 512, "6.11-v6": [1] * 512, "6.11": [1] * 512, "6.15": [512],
                 "6.18": [256, 256], "6.18.44": [256, 256]}


@covers("pte_batch_partial", "batched_lazyfree_unmap")
@pytest.mark.parametrize("kernel", sorted(PROFILES))
def test_reclaiming_a_lazyfree_thp_whose_vma_was_cut(kernel):
    assert_table_covers_every_profile(PARTIAL_BATCH)
    m = Machine(kernel=kernel, trace=True)
    p, a = pte_mapped_thp(m)
    p.madvise(a, THP, MADV_FREE)
    p.mprotect(a + THP // 2, THP // 2, PROT_READ)
    assert len(p.mm.vmas) == 2
    m.clear_trace()
    changed = delta(m, m.reclaim)
    assert changed.get("pglazyfreed") == 512 and changed.get("thp_split_page", 0) == 0
    discards = [e.details["nr_pages"] for e in m.trace
                if e.function == "try_to_unmap_one" and "nr_pages" in e.details]
    assert discards == PARTIAL_BATCH[kernel]
    assert p.thp_map(a, THP) == "-"
    check_invariants(m)


# ---------------------------------------------------------------- a missed mlock

# The mlock a folio should have can be missed: mlock_count undercounts (reclaim is meant to
# fix that), e.g. here. Process P and its child C both map a lazyfree THP and both mlock
# it (MLOCK_ONFAULT: no populate, so the PMDs stay clean): mlock_count 2. C cuts its VMA
# inside the THP (mprotect): the PMD split removes C's PMD mapping, munlock_vma_folio()
# drops the count to 1; C unmaps half its PTEs: another munlock, the count reaches 0 and
# PG_mlocked is cleared (__munlock_folio() in mm/mlock.c), although P still maps the THP
# by a PMD in its VM_LOCKED VMA. C exits.
#
# Neither reclaim entry can then reach try_to_unmap() on this folio: MADV_PAGEOUT refuses
# VM_LOCKED VMAs (can_madv_lru_vma()) and skips folios other processes map, and LRU reclaim
# calls folio_referenced() first, whose folio_referenced_one() restores the mlock of a
# PMD-mapped folio in a VM_LOCKED VMA and activates it. (That is David Hildenbrand's point
# in the v6 2/3 review: the extra condition was not needed.) So the test isolates the folio
# and hands it to reclaim_pages(), MADV_PAGEOUT's reclaim step, directly.
#
# try_to_unmap_one()'s VM_LOCKED branch then decides:
# - 6.10: the PMD is split before the walk, whatever the VMA; the PTE walk meets VM_LOCKED,
#   does not mlock a large folio, aborts. Not mlocked, activated.
# - 6.11, 6.15: restore the mlock only for small folios (6.12.117 mm/rmap.c); abort.
# - 6.11-v6: the condition under review, "small, or PMD-mapped with TTU_SPLIT_HUGE_PMD"
#   (20240521040244.48760-3): mlocked; back on the LRU it is culled to the unevictable list.
# - 6.18: "mm/rmap: mlock large folios in try_to_unmap_one()" (Kiryl Shutsemau): a PMD
#   mapping counts as the whole folio, so it is mlocked.
# The THP is discarded nowhere (VM_LOCKED is checked before the PMD-level discard).
MISSED_MLOCK_PMD = {
    "6.10": (1, "T", False),
    "6.11-v6": (0, "H", True),
    "6.11": (0, "H", False),
    "6.15": (0, "H", False),
    "6.18": (0, "H", True),
    "6.18.44": (0, "H", True),
}


def reclaim_by_hand(m, folio) -> dict:
    """Isolate ``folio`` and reclaim it as MADV_PAGEOUT's reclaim_pages() would."""

    def reclaim():
        with running(m):
            assert folio_isolate_lru(folio)
            reclaim_pages([folio])

    return delta(m, reclaim)


@covers("v6_mlock_restore_pmd", "mlock_large_in_ttu", "split_pmd_before_walk")
@pytest.mark.parametrize("kernel", sorted(PROFILES))
def test_a_pmd_mapped_thp_that_missed_its_mlock(kernel):
    assert_table_covers_every_profile(MISSED_MLOCK_PMD)
    m = Machine(kernel=kernel, trace=False)
    p, a = thp_region(m, THP)
    p.madvise(a, THP, MADV_FREE)
    c = p.fork()
    p.mlock2(a, THP, MLOCK_ONFAULT)
    c.mlock2(a, THP, MLOCK_ONFAULT)
    assert first_page(p, a).mlocked
    c.mprotect(a, MiB, PROT_READ)
    assert first_page(p, a).mlocked  # mlock_count 2 -> 1
    c.munmap(a, MiB)
    c.exit()
    page = first_page(p, a)
    assert not page.mlocked and not page.swapbacked and page.pmd_mapped  # the mlock was missed
    check_invariants(m)

    changed = reclaim_by_hand(m, folio_at(m, p, a))
    split, slots, mlocked = MISSED_MLOCK_PMD[kernel]
    assert changed.get("thp_split_pmd", 0) == split
    assert changed.get("pglazyfreed", 0) == 0
    assert p.thp_map(a, THP) == slots
    page = first_page(p, a)
    assert (page.mlocked, page.unevictable) == (mlocked, mlocked)
    assert p.read(a) == 0x5A
    check_invariants(m)


# The same for a THP already mapped by PTEs, all in one page table: one process mlocks a
# lazyfree THP (MLOCK_ONFAULT), then splits its VMA inside the THP and merges it back
# (MADV_NOHUGEPAGE and MADV_HUGEPAGE on one page; madvise of those is allowed on VM_LOCKED
# VMAs). The PMD split munlocks (mlock_count 1 -> 0). Reclaim driven by hand:
# - 6.10 .. 6.15: a large folio in a VM_LOCKED VMA is not mlocked by try_to_unmap_one().
# - 6.18: Kiryl's change counts the PTEs; all 512 under one page-table lock, so it mlocks.
MISSED_MLOCK_PTES = {"6.10": False, "6.11-v6": False, "6.11": False, "6.15": False, "6.18": True, "6.18.44": True}


@covers("mlock_large_in_ttu")
@pytest.mark.parametrize("kernel", sorted(PROFILES))
def test_a_pte_mapped_thp_that_missed_its_mlock(kernel):
    assert_table_covers_every_profile(MISSED_MLOCK_PTES)
    m = Machine(kernel=kernel, trace=False)
    p, a = thp_region(m, THP)
    p.madvise(a, THP, MADV_FREE)
    p.mlock2(a, THP, MLOCK_ONFAULT)
    assert first_page(p, a).mlocked
    p.madvise(a, PAGE_SIZE, MADV_NOHUGEPAGE)
    p.madvise(a, PAGE_SIZE, MADV_HUGEPAGE)
    assert p.thp_map(a, THP) == "T" and not first_page(p, a).mlocked
    check_invariants(m)

    changed = reclaim_by_hand(m, folio_at(m, p, a))
    assert changed.get("pglazyfreed", 0) == 0 and changed.get("thp_split_pmd", 0) == 0
    mlocked = MISSED_MLOCK_PTES[kernel]
    page = first_page(p, a)
    assert (page.mlocked, page.unevictable) == (mlocked, mlocked)
    assert p.thp_map(a, THP) == "T" and p.read(a) == 0x5A
    check_invariants(m)


# ---------------------------------------------------------------- writing to the huge zero page

# A read fault in a THP-eligible range maps the huge zero page; a write then:
# - 6.10/6.11: do_huge_pmd_wp_page() sends a huge zero PMD to its fallback, which splits it
#   (__split_huge_pmd(), thp_split_pmd +1; 6.12.117 mm/huge_memory.c) and the PTE fault
#   copies one 4 KiB page: Rss 4 kB.
# - 6.15+: "mm: Allocate THP on hugezeropage wp-fault" (Dev Jain) maps a new THP instead:
#   no split, Rss 2048 kB, AnonHugePages 2048 kB (seen on the 6.18.44 host). The release
#   that first had it is not verified (the profiles put it in 6.15).
ZERO_WP = {
    "6.10": (1, "s", 4), "6.11-v6": (1, "s", 4), "6.11": (1, "s", 4),
    "6.15": (0, "H", 2048), "6.18": (0, "H", 2048), "6.18.44": (0, "H", 2048),
}


@covers("thp_on_huge_zero_wp")
@pytest.mark.parametrize("kernel", sorted(PROFILES))
def test_writing_to_the_huge_zero_page(kernel):
    assert_table_covers_every_profile(ZERO_WP)
    m = Machine(kernel=kernel, trace=False)
    p = m.spawn()
    a = p.mmap(THP)
    p.madvise(a, THP, MADV_HUGEPAGE)
    assert p.read(a + PAGE_SIZE) == 0
    assert p.thp_map(a, THP) == "Z" and p.smaps()["Rss"] == 0
    changed = delta(m, p.write, a + PAGE_SIZE, PAGE_SIZE, 3)
    split, slots, rss = ZERO_WP[kernel]
    assert changed.get("thp_split_pmd", 0) == split
    assert p.thp_map(a, THP) == slots and p.smaps()["Rss"] == rss
    assert (p.read(a), p.read(a + PAGE_SIZE)) == (0, 3)
    check_invariants(m)


# ---------------------------------------------------------------- zero-filled subpages on a split

# A THP of which only page 0 was written (one byte), the other 511 pages still the zeros the
# fault cleared. MADV_COLD of its first half covers the folio in part, so
# madvise_cold_or_pageout_pte_range() splits the folio (thp_split_pmd +1, thp_split_page +1).
# Since b1f202060afe (6.12), __split_huge_page() restores the mappings with
# RMP_USE_SHARED_ZEROPAGE: try_to_map_unused_to_zeropage() (mm/migrate.c) maps the zero page
# for each zero-filled subpage and the subpage is freed, so only page 0 stays resident
# (Rss 4 kB, 511 zero-page PTEs). Before it, all 512 pages stay (Rss 2048 kB). Seen on
# 6.18.44: Rss 4 kB after the split (scenario zero-subpages-on-split).
ZERO_SUBPAGES = {
    "6.10": (2048, 0), "6.11-v6": (2048, 0), "6.11": (2048, 0),
    "6.15": (4, 511), "6.18": (4, 511), "6.18.44": (4, 511),
}


@covers("split_remaps_zero_subpages")
@pytest.mark.parametrize("kernel", sorted(PROFILES))
def test_splitting_a_thp_with_zero_filled_pages(kernel):
    assert_table_covers_every_profile(ZERO_SUBPAGES)
    m = Machine(kernel=kernel, trace=False)
    p = m.spawn()
    a = p.mmap(THP)
    p.madvise(a, THP, MADV_HUGEPAGE)
    p.write(a + 100, 1, 7)
    changed = delta(m, p.madvise, a, THP // 2, MADV_COLD)
    assert changed.get("thp_split_pmd") == 1 and changed.get("thp_split_page") == 1
    rss, zero_pages = ZERO_SUBPAGES[kernel]
    assert p.smaps()["Rss"] == rss
    assert sum(page.zero_page for page in p.pagemap(a, THP) if page.present) == zero_pages
    assert (p.read(a + 100), p.read(a + 101), p.read(a + THP - 1)) == (7, 0, 0)
    check_invariants(m)


def test_a_split_of_the_pmd_alone_keeps_zero_filled_pages():
    """Partial MADV_DONTNEED, munmap and mprotect split the PMD, never the folio, so the
    zero-filled pages stay (seen on 6.18.44, scenario zero-subpages-on-split)."""
    m = Machine(kernel="6.18.44", trace=False)
    p = m.spawn()
    a = p.mmap(THP)
    p.madvise(a, THP, MADV_HUGEPAGE)
    p.write(a + 100, 1, 7)
    p.madvise(a + THP // 2, THP // 2, MADV_DONTNEED)
    p.mprotect(a, PAGE_SIZE, PROT_READ)
    assert p.smaps()["Rss"] == 1024 and p.thp_map(a, THP) == "t"
    assert sum(page.zero_page for page in p.pagemap(a, THP) if page.present) == 0
    check_invariants(m)


# ---------------------------------------------------------------- COW reuse of a large folio

# fork() shares a PMD-mapped THP; the parent's write to page 0 splits its PMD and copies
# that page (do_huge_pmd_wp_page() falls back to the PTE fault, wp_page_copy()). The child
# exits: the THP is now mapped by the parent's 511 PTEs only, refcount 511 = mapcount 511.
# The parent writes page 1 (read-only PTE):
# - before 6.15, wp_can_reuse_anon_folio() refused every large folio (6.12.117 mm/memory.c):
#   page 1 is copied into a new small folio, the THP keeps 510 pages mapped;
# - since 1da190f4d0a6 (6.15) a large folio only this mm maps, with no reference besides
#   its mappings, is reused: page 1 stays in the THP (511 pages). Seen on 6.18.44 (scenario
#   cow-reuse: 511 THP pages after the write).
COW_REUSE = {
    "6.10": 510, "6.11-v6": 510, "6.11": 510,
    "6.15": 511, "6.18": 511, "6.18.44": 511,
}


@covers("reuse_large_anon_folio")
@pytest.mark.parametrize("kernel", sorted(PROFILES))
def test_writing_a_thp_the_forked_child_no_longer_maps(kernel):
    assert_table_covers_every_profile(COW_REUSE)
    m = Machine(kernel=kernel, trace=False)
    p, a = thp_region(m, THP, value=1)
    child = p.fork()
    p.write(a, PAGE_SIZE, 2)
    child.exit()
    changed = delta(m, p.write, a + PAGE_SIZE, PAGE_SIZE, 3)
    assert sum(page.thp for page in p.pagemap(a, THP)) == COW_REUSE[kernel]
    assert changed.get("thp_split_pmd", 0) == 0 and p.smaps()["Rss"] == 2048
    assert (p.read(a), p.read(a + PAGE_SIZE), p.read(a + 2 * PAGE_SIZE)) == (2, 3, 1)
    check_invariants(m)


def test_every_switch_has_a_scenario_that_tells_its_profiles_apart():
    assert set(COVERED) == set(CHANGES), f"no scenario for {set(CHANGES) - set(COVERED)}"


# Switches a profile cannot reach, so flipping them there changes nothing:
# - 6.10 splits the PMD before the walk, so the walk never yields a PMD and neither the
#   PMD-level discard (nor its 6.15 form) nor the v6 "PMD-mapped" mlock condition can apply;
# - from 6.18 the VM_LOCKED branch is Kiryl's, which replaced the one the v6 condition was in;
# - without the PMD-level discard, its 6.15 "no split" variant has nothing to vary;
# - without batched unmap (before 6.15), the form of the batch has nothing to vary.
UNREACHABLE = {
    ("6.10", "v6_mlock_restore_pmd"), ("6.10", "pmd_lazyfree_discard"), ("6.10", "pmd_lazyfree_no_split"),
    ("6.18", "v6_mlock_restore_pmd"), ("6.18.44", "v6_mlock_restore_pmd"),
    ("6.18.44", "pmd_lazyfree_no_split"),
    ("6.10", "pte_batch_partial"), ("6.11-v6", "pte_batch_partial"), ("6.11", "pte_batch_partial"),
}


@pytest.mark.parametrize("kernel", sorted(PROFILES))
def test_flipping_any_reachable_switch_breaks_some_scenario(kernel, monkeypatch):
    """The scenarios pin each profile down: a profile with one switch flipped fails at least
    one of them, unless the switch cannot matter in that profile (UNREACHABLE)."""
    scenarios = sorted({name for names in COVERED.values() for name in names})
    profile = PROFILES[kernel]
    for switch in CHANGES:
        monkeypatch.setitem(kernels.PROFILES, kernel, replace(profile, **{switch: not getattr(profile, switch)}))
        failed = []
        for name in scenarios:
            try:
                globals()[name](kernel)
            except AssertionError:
                failed.append(name)
        assert bool(failed) != ((kernel, switch) in UNREACHABLE), \
            f"{kernel} with {switch} flipped: failing scenarios {failed}"
