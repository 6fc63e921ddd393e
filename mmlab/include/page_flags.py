"""Folio flags (include/linux/page-flags.h) and their folio_test_*/set/clear helpers.

The kernel keeps these bits in folio->flags; the model keeps them in ``Folio.flags``.
PG_anon stands in for the PAGE_MAPPING_ANON bit of folio->mapping, so that one word says
everything kpageflags reports about a folio.
"""

from enum import IntEnum


class PG(IntEnum):
    """The page flags the model uses, named as in the kernel without the PG_ prefix.

    Bit values to combine with ``|``, ``&`` and ``~`` into a plain int, as folio->flags is.
    (An IntEnum rather than an IntFlag: its arithmetic is int's, which matters in the loops
    that test a flag once per PTE; an IntFlag builds a new enum value on every ``&``.)
    """

    referenced = 1 << 2
    uptodate = 1 << 3
    dirty = 1 << 4
    lru = 1 << 5
    active = 1 << 6
    workingset = 1 << 7
    swapbacked = 1 << 8
    unevictable = 1 << 9
    mlocked = 1 << 10
    anon = 1 << 11
    partially_mapped = 1 << 12
    zero = 1 << 13  # the (huge) zero page: KPF_ZERO_PAGE


def _accessors(flag: PG):
    def test(folio) -> bool:
        return bool(folio.flags & flag)

    def set_(folio) -> None:
        folio.flags |= flag

    def clear(folio) -> None:
        folio.flags &= ~flag

    return test, set_, clear


folio_test_dirty, folio_set_dirty, folio_clear_dirty = _accessors(PG.dirty)
folio_test_lru, folio_set_lru, folio_clear_lru = _accessors(PG.lru)
folio_test_active, folio_set_active, folio_clear_active = _accessors(PG.active)
folio_test_referenced, folio_set_referenced, folio_clear_referenced = _accessors(PG.referenced)
folio_test_workingset, folio_set_workingset, folio_clear_workingset = _accessors(PG.workingset)
folio_test_swapbacked, folio_set_swapbacked, folio_clear_swapbacked = _accessors(PG.swapbacked)
folio_test_unevictable, folio_set_unevictable, folio_clear_unevictable = _accessors(PG.unevictable)
folio_test_mlocked, folio_set_mlocked, folio_clear_mlocked = _accessors(PG.mlocked)
folio_test_anon, folio_set_anon, _ = _accessors(PG.anon)  # the kernel sets it with folio->mapping
folio_test_partially_mapped, folio_set_partially_mapped, folio_clear_partially_mapped = _accessors(
    PG.partially_mapped
)


def folio_clear_flags_at_free(folio) -> None:
    """free_pages_prepare(): a freed folio keeps none of these flags (the kernel clears every
    page flag but PG_hwpoison, PAGE_FLAGS_CHECK_AT_PREP, and the mapping that says anon)."""
    folio.flags = 0


def folio_test_large(folio) -> bool:
    return folio.order > 0


def folio_test_pmd_mappable(folio) -> bool:
    return folio.order >= 9


def folio_test_lazyfree(folio) -> bool:
    """Anonymous but not swap-backed: MADV_FREE'd memory reclaim may drop without writing it
    out. (A named helper since "mm: add folio_test_lazyfree helper", 2026; before it the
    kernel spelled out the two tests.)"""
    return bool(folio.flags & PG.anon) and not folio.flags & PG.swapbacked


def flag_names(flags: int) -> list[str]:
    """The names of the set flags, in bit order, for display."""
    return [f.name for f in PG if flags & f]
