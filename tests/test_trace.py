"""Machine.trace: what an event records, and that a record stays cheap when a trace holds
one event per PTE (benchmarks/reclaim_lazyfree.py measures the time)."""

import gc

import pytest

from mmlab import MADV_FREE, MADV_HUGEPAGE, MADV_PAGEOUT, PROT_READ, Machine, MiB
from mmlab.state import running, trace

THP = 2 * MiB


def lazyfree_thp(kernel):
    m = Machine(kernel=kernel)
    p = m.spawn()
    a = p.mmap(THP)
    p.madvise(a, THP, MADV_HUGEPAGE)
    p.write(a, THP, 1)
    p.madvise(a, THP, MADV_FREE)
    return m, p, a


def test_a_discard_event_names_its_details_and_fills_its_message_from_them():
    m, p, a = lazyfree_thp("6.10")
    m.clear_trace()
    p.madvise(a, THP, MADV_PAGEOUT)
    discards = [e for e in m.trace if e.function == "try_to_unmap_one" and "discard" in e.message]
    # 6.10 splits the PMD first: 512 PTE mappings, each holding a reference besides the
    # caller's, dropped one per step.
    assert [e.details for e in discards] == [{"ref_count": 513 - i, "map_count": 512 - i, "nr_pages": 1}
                                             for i in range(512)]
    assert discards[0].message == "clean lazyfree folio, refcount 513 = 1 + mapcount 512: discard 1 PTE(s)"
    assert discards[0].folio["refcount"] == 513 and discards[-1].folio["mapcount"] == 1


def test_an_event_shows_the_vma_as_it_was_when_recorded():
    m, p, a = lazyfree_thp("6.11")
    m.clear_trace()
    p.madvise(a, THP, MADV_PAGEOUT)
    walk = next(e for e in m.trace if e.function == "rmap_walk_anon")
    before = walk.message
    assert f"{a:#x}-{a + THP:#x}" in before
    p.mprotect(a, THP // 2, PROT_READ)  # splits the VMA the event names
    assert m.trace[walk.seq].message == before


def test_a_template_given_the_wrong_number_of_values_fails_when_read():
    m = Machine()
    with running(m):
        trace("test", "{one} and {two}", None, 1)
    with pytest.raises(ValueError):
        list(m.trace)


def test_per_pte_records_leave_nothing_for_the_garbage_collector_to_track():
    m = Machine(kernel="6.10")
    p = m.spawn()
    size = 16 * MiB  # 8 THPs: over 4096 events, so at least one full block
    a = p.mmap(size)
    p.madvise(a, size, MADV_HUGEPAGE)
    p.write(a, size, 1)
    p.madvise(a, size, MADV_FREE)
    m.clear_trace()
    p.madvise(a, size, MADV_PAGEOUT)
    assert len(m.trace) > m.trace.BLOCK
    # A collection untracks a tuple that holds only untracked things; a record reached
    # before its parts are untracked waits for the next one, and a block for its records.
    for _ in range(3):
        gc.collect()
    assert m.trace._blocks and not any(gc.is_tracked(block) for block in m.trace._blocks)
    assert not any(gc.is_tracked(record) for record in m.trace._filling)
    assert [e.seq for e in m.trace[m.trace.BLOCK - 1:m.trace.BLOCK + 1]] == [m.trace.BLOCK - 1, m.trace.BLOCK]
