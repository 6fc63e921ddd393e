"""Refcounts and mapcounts of THPs through their life, as the kernel keeps them.

Expected values come from Debian's 6.12.117 source: folio_add_new_anon_rmap() and
folio_add_anon_rmap_pmd() / _ptes() and __folio_remove_rmap() in mm/rmap.c; __split_huge_pmd_locked(), copy_huge_pmd(),
do_huge_pmd_wp_page() and madvise_free_huge_pmd() in mm/huge_memory.c; copy_present_ptes()
and wp_page_copy() in mm/memory.c. The model keeps the kernel's "minus one" convention in
``_mapcount``/``_large_mapcount``/``_entire_mapcount``; the folio_* helpers add it back.
"""

from __future__ import annotations

import pytest

from mmlab import (
    MADV_FREE,
    MADV_HUGEPAGE,
    PAGE_SIZE,
    PROFILES,
    PROT_READ,
    Machine,
    MiB,
)
from mmlab.debug import check_invariants
from mmlab.include.mm import folio_entire_mapcount, folio_mapcount
from mmlab.mm.vmscan import folio_isolate_lru, folio_putback_lru
from mmlab.state import running

THP = 2 * MiB


def delta(machine, call, *args) -> dict:
    before = dict(machine.vmstat)
    call(*args)
    return {name: value - before[name] for name, value in machine.vmstat.items() if value != before[name]}


def thp(kernel: str = "6.18.44", value: int = 7):
    """A machine whose one process has one PMD-mapped THP at ``a``, filled with ``value``."""
    m = Machine(kernel=kernel, trace=False)
    p = m.spawn()
    a = p.mmap(THP)
    p.madvise(a, THP, MADV_HUGEPAGE)
    p.write(a, THP, value)
    (folio,) = m.folios.values()
    return m, p, a, folio


def counts(folio) -> tuple[int, int, int]:
    """(refcount, mapcount, entire mapcount) as folio_ref_count(), folio_mapcount() and
    folio_entire_mapcount() report them."""
    return folio._refcount, folio_mapcount(folio), folio_entire_mapcount(folio)


def page_mapcounts(folio) -> set[int]:
    """The distinct per-page PTE mapcounts (page->_mapcount + 1) over the folio."""
    return {count + 1 for count in folio._mapcount}


@pytest.mark.parametrize("kernel", sorted(PROFILES))
def test_a_pmd_mapped_thp_has_one_reference_and_one_entire_mapping(kernel):
    # folio_add_new_anon_rmap() on a PMD-sized folio: _entire_mapcount and _large_mapcount
    # go from -1 to 0 (one mapping each); no page has a PTE mapping (_mapcount -1). The
    # fault's reference becomes the mapping's: refcount 1 (6.12.117 mm/rmap.c).
    m, p, a, folio = thp(kernel)
    assert counts(folio) == (1, 1, 1)
    assert page_mapcounts(folio) == {0} and folio._nr_pages_mapped == 0
    assert {info.mapcount for info in p.pagemap(a, THP)} == {1}  # /proc/kpagecount: the PMD counts per page
    assert m.vmstat["nr_anon_transparent_hugepages"] == 1 and m.vmstat["nr_anon_pages"] == 512
    assert p.mm.MM_ANONPAGES == 512


def test_splitting_the_pmd_gives_512_references_and_512_pte_mappings():
    # __split_huge_pmd_locked(): folio_ref_add(HPAGE_PMD_NR - 1), folio_add_anon_rmap_ptes()
    # for all 512 pages, then folio_remove_rmap_pmd(): refcount 512, mapcount 512, every page
    # mapped once, no entire mapping; the folio itself stays one THP (6.12.117 mm/rmap.c).
    m, p, a, folio = thp()
    changed = delta(m, p.mprotect, a + MiB, PAGE_SIZE, PROT_READ)  # a VMA boundary inside the THP
    assert changed == {"thp_split_pmd": 1, "nr_anon_transparent_hugepages": -1}
    assert counts(folio) == (512, 512, 0)
    assert page_mapcounts(folio) == {1} and folio._nr_pages_mapped == 512
    assert folio.order == 9 and len(p.mm.vmas) == 3
    assert p.thp_map(a, THP) == "T"
    assert m.vmstat["nr_anon_transparent_hugepages"] == 0 and m.vmstat["nr_anon_pages"] == 512
    assert p.read(a) == 7 and p.read(a + MiB) == 7
    check_invariants(m)


def test_isolation_from_the_lru_adds_one_reference():
    # folio_isolate_lru() takes a reference (folio_get) for the isolating caller: the "+1"
    # that the lazyfree checks expect, refcount == mapcount + 1 (6.12.117 mm/huge_memory.c).
    m, p, a, folio = thp()
    lru = folio.lru
    with running(m):
        assert folio_isolate_lru(folio)
        assert counts(folio) == (2, 1, 1) and folio.lru is None
        folio_putback_lru(folio)
    assert counts(folio) == (1, 1, 1) and folio.lru == lru
    check_invariants(m)


def test_fork_shares_a_pmd_mapped_thp_doubling_refcount_and_mapcount():
    # copy_huge_pmd(): folio_get() and folio_try_dup_anon_rmap_pmd() (entire and large
    # mapcount +1) for the child's PMD; both PMDs write-protected, PageAnonExclusive cleared.
    m, p, a, folio = thp()
    child = p.fork()
    assert counts(folio) == (2, 2, 2)
    assert {info.mapcount for info in child.pagemap(a, THP)} == {2}
    assert p.thp_map(a, THP) == child.thp_map(a, THP) == "H"
    assert m.vmstat["nr_anon_transparent_hugepages"] == 1  # counted per folio, not per mapping
    assert child.smaps()["Pss"] == 1024 and child.smaps()["Rss"] == 2048
    check_invariants(m)
    child.exit()
    assert counts(folio) == (1, 1, 1)
    check_invariants(m)


def test_fork_shares_a_pte_mapped_thp_page_by_page():
    # copy_present_ptes(): one reference and one mapping per PTE copied.
    m, p, a, folio = thp()
    p.mprotect(a + MiB, PAGE_SIZE, PROT_READ)
    p.fork()
    assert counts(folio) == (1024, 1024, 0)
    assert page_mapcounts(folio) == {2}
    check_invariants(m)


def test_a_write_to_a_shared_thp_splits_the_writers_pmd_and_copies_one_page():
    # do_huge_pmd_wp_page(): the THP is not exclusive and has other references, so it falls
    # back: __split_huge_pmd() on the writer's PMD, then the PTE fault (wp_page_copy())
    # copies the one 4 KiB page written; a large folio is never reused for a COW fault.
    m, p, a, folio = thp()
    child = p.fork()
    changed = delta(m, p.write, a + 3 * PAGE_SIZE, 1, 9)
    assert changed.get("thp_split_pmd") == 1 and "thp_fault_alloc" not in changed
    assert "thp_deferred_split_page" not in changed  # still entirely mapped by the child's PMD
    # child's PMD (1) + parent's 511 remaining PTEs; the copied page has its own folio.
    assert counts(folio) == (512, 512, 1)
    assert len(m.folios) == 2
    copy = m.folios[p.pagemap(a + 3 * PAGE_SIZE, PAGE_SIZE)[0].pfn]
    assert copy.order == 0 and counts(copy) == (1, 1, 0)
    assert p.thp_map(a, THP) == "x" and child.thp_map(a, THP) == "H"
    assert (p.read(a + 3 * PAGE_SIZE), child.read(a + 3 * PAGE_SIZE), p.read(a)) == (9, 7, 7)
    check_invariants(m)


def test_a_read_fault_maps_the_huge_zero_page():
    # do_huge_pmd_anonymous_page(): a read fault in a THP-eligible range maps the huge zero
    # page (allocated once: thp_zero_page_alloc) read-only; no anonymous memory is used.
    m = Machine(trace=False)
    p = m.spawn()
    a = p.mmap(2 * THP)
    p.madvise(a, 2 * THP, MADV_HUGEPAGE)
    changed = delta(m, p.read, a + 12345)
    assert changed == {"thp_zero_page_alloc": 1, "pgfault": 1}
    assert p.read(a + 12345) == 0
    assert delta(m, p.read, a + THP) == {"pgfault": 1}  # the same huge zero page, no new one
    assert p.thp_map(a, 2 * THP) == "ZZ"
    assert p.smaps()["Rss"] == 0 and p.mm.MM_ANONPAGES == 0 and not m.folios
    assert all(info.zero_page for info in p.pagemap(a, THP))
    check_invariants(m)


def test_madvise_free_on_part_of_a_thp_splits_the_folio():
    # madvise_free_huge_pmd(): a range that covers part of the PMD splits the folio
    # (split_folio(): its unmap_folio() splits the PMD, thp_split_pmd; the folio split counts
    # thp_split_page); the PTE loop then marks only the pages in range lazyfree.
    m, p, a, folio = thp()
    changed = delta(m, p.madvise, a, MiB, MADV_FREE)
    assert changed == {"thp_split_pmd": 1, "thp_split_page": 1, "pglazyfree": 256,
                       "nr_anon_transparent_hugepages": -1}
    assert len(m.folios) == 512 and all(f.order == 0 for f in m.folios.values())
    assert all(counts(f) == (1, 1, 0) for f in m.folios.values())
    pages = p.pagemap(a, THP)
    assert [info.swapbacked for info in pages] == [False] * 256 + [True] * 256
    assert p.thp_map(a, THP) == "s" and p.smaps()["LazyFree"] == 1024
    check_invariants(m)
