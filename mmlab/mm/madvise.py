"""madvise() (~ mm/madvise.c): MADV_FREE, MADV_DONTNEED, MADV_COLD, MADV_PAGEOUT and
MADV_(NO)HUGEPAGE, with the errors Linux gives.

MADV_FREE, MADV_DONTNEED, MADV_COLD and MADV_PAGEOUT refuse a VM_LOCKED VMA with EINVAL:
mlocked memory is neither freed lazily nor pushed out. Parts of the range that are not
mapped give ENOMEM after the mapped parts were handled, as in the kernel.
"""

from __future__ import annotations

import errno

from ..include.internal import folio_pte_batch
from ..include.mm import VM_HUGEPAGE, VM_LOCKED, VM_NOHUGEPAGE, folio_mapcount, is_zero_folio, page_align
from ..include.page_flags import (
    folio_clear_dirty,
    folio_clear_referenced,
    folio_set_workingset,
    folio_test_active,
    folio_test_dirty,
    folio_test_large,
    folio_test_lru,
    folio_test_unevictable,
)
from ..include.pgtable import PmdHuge, pmd_addr_end, pmd_index, pte_index
from ..state import trace
from ..uapi import (
    ADVICE_NAMES,
    HPAGE_PMD_SIZE,
    MADV_COLD,
    MADV_COLLAPSE,
    MADV_DONTNEED,
    MADV_FREE,
    MADV_HUGEPAGE,
    MADV_NOHUGEPAGE,
    MADV_PAGEOUT,
    PAGE_SIZE,
)
from .huge_memory import folio_maybe_mapped_shared, madvise_free_huge_pmd, try_split_folio
from .khugepaged import madvise_collapse
from .memory import unmap_vma_range
from .mmap import vma_modify_flags
from .swap import folio_deactivate, folio_mark_lazyfree
from .vmscan import folio_isolate_lru, folio_putback_lru, reclaim_pages


def do_madvise(mm, start: int, length: int, advice: int) -> None:
    if advice not in ADVICE_NAMES:
        raise OSError(errno.EINVAL, f"madvise: advice {advice} is not one the model knows")
    if start % PAGE_SIZE:
        raise OSError(errno.EINVAL, "madvise: start must be page aligned")
    if length < 0:
        raise OSError(errno.EINVAL, "madvise: negative length")
    end = start + page_align(length)
    if end == start:
        return
    trace("do_madvise", f"{ADVICE_NAMES[advice]} {start:#x}-{end:#x}")
    addr = start
    unmapped = False
    for vma in list(mm.vmas_in(start, end)):
        if vma.vm_start > addr:
            unmapped = True
        lo, hi = max(start, vma.vm_start), min(end, vma.vm_end)
        madvise_vma_behavior(vma, lo, hi, advice)
        addr = hi
    if unmapped or addr < end:
        raise OSError(errno.ENOMEM, "madvise: part of the range is not mapped")


def madvise_vma_behavior(vma, start: int, end: int, advice: int) -> None:
    if advice in (MADV_FREE, MADV_DONTNEED, MADV_COLD, MADV_PAGEOUT) and vma.vm_flags & VM_LOCKED:
        raise OSError(errno.EINVAL, f"{ADVICE_NAMES[advice]} on a VM_LOCKED range")
    if advice == MADV_FREE:
        madvise_free_single_vma(vma, start, end)
    elif advice == MADV_DONTNEED:
        unmap_vma_range(vma, start, end)
    elif advice in (MADV_COLD, MADV_PAGEOUT):
        madvise_cold_or_pageout(vma, start, end, pageout=advice == MADV_PAGEOUT)
    elif advice == MADV_COLLAPSE:
        madvise_collapse(vma, start, end)
    elif advice in (MADV_HUGEPAGE, MADV_NOHUGEPAGE):
        # MADV_NORMAL only clears read-ahead hints (VM_RAND_READ, VM_SEQ_READ), which the
        # model does not keep: it leaves VM_HUGEPAGE and VM_NOHUGEPAGE as they are.
        flags = vma.vm_flags & ~(VM_HUGEPAGE | VM_NOHUGEPAGE)
        flags |= VM_HUGEPAGE if advice == MADV_HUGEPAGE else VM_NOHUGEPAGE
        if flags != vma.vm_flags:
            vma_modify_flags(vma, start, end, flags)


def _pmd_ranges(start: int, end: int):
    """The pieces of [start, end) that each lie within one PMD."""
    addr = start
    while addr < end:
        next_addr = pmd_addr_end(addr, end)
        yield addr, next_addr
        addr = next_addr


def _whole_folio_runs(ptes, addr: int, next_addr: int):
    """Yield (folio, its PTEs) for each folio mapped in [addr, next_addr) of one PTE table.
    A large folio only partly in the range is split first and its pages come out one by
    one; if it may be mapped by another process, or cannot be split, it is skipped (as
    both madvise_free_pte_range and madvise_cold_or_pageout_pte_range do)."""
    i, last = pte_index(addr), pte_index(next_addr - 1)
    while i <= last:
        pte = ptes[i]
        if pte is None or is_zero_folio(pte.folio):
            i += 1
            continue
        folio = pte.folio
        nr = 1
        if folio_test_large(folio):
            nr = folio_pte_batch(ptes, i, last - i + 1)
            if nr < folio.nr_pages:
                if not folio_maybe_mapped_shared(folio) and try_split_folio(folio):
                    continue  # look at the same PTE again: it now maps a small folio
                i += nr
                continue
        yield folio, ptes[i:i + nr]
        i += nr


def madvise_free_single_vma(vma, start: int, end: int) -> None:
    """MADV_FREE: mark anon folios lazyfree: reclaim may drop them instead of swapping, unless
    they are written again first. Large folios only partly in the range are split.

    Only a PMD-mapped THP, and a large folio that would need splitting, are skipped when
    another process may map them. A PTE-mapped folio shared after fork() is still marked
    lazyfree (unless PG_dirty is set): this process's PTEs become clean, the other
    process's stay dirty, and reclaim keeps the folio when it meets a dirty one."""
    mm = vma.vm_mm
    for addr, next_addr in _pmd_ranges(start, end):
        entry = mm.pmds.get(pmd_index(addr))
        if isinstance(entry, PmdHuge) and madvise_free_huge_pmd(vma, addr, next_addr):
            continue
        entry = mm.pmds.get(pmd_index(addr))
        if entry is None or isinstance(entry, PmdHuge):
            continue
        for folio, entries in _whole_folio_runs(entry.ptes, addr, next_addr):
            if folio_test_dirty(folio):
                # Clearing PG_dirty would hide another process's write; a folio mapped by
                # exactly its own pages' count of PTEs here can only be this mm's.
                if folio_mapcount(folio) != folio.nr_pages:
                    continue
                folio_clear_dirty(folio)
            for pte in entries:
                pte.young = pte.dirty = False
            folio_mark_lazyfree(folio)


def madvise_cold_or_pageout(vma, start: int, end: int, pageout: bool) -> None:
    """MADV_COLD deactivates; MADV_PAGEOUT isolates and reclaims at once (reclaim_pages),
    one PMD's worth of folios at a time. A THP only partly in the range is split first;
    folios mapped by other processes too are skipped."""
    mm = vma.vm_mm

    def handle(folio, entries, folio_list):
        if not pageout:
            for e in entries:
                e.young = False
        folio_clear_referenced(folio)
        if folio_test_active(folio):
            folio_set_workingset(folio)
        if pageout:
            if folio_isolate_lru(folio):
                if folio_test_unevictable(folio):
                    folio_putback_lru(folio)
                else:
                    folio_list.append(folio)
        else:
            folio_deactivate(folio)

    for addr, next_addr in _pmd_ranges(start, end):
        folio_list = []
        entry = mm.pmds.get(pmd_index(addr))
        if isinstance(entry, PmdHuge):
            folio = entry.folio
            if is_zero_folio(folio) or folio_maybe_mapped_shared(folio):
                continue
            if next_addr - addr == HPAGE_PMD_SIZE:
                handle(folio, [entry], folio_list)
                if pageout:
                    reclaim_pages(folio_list)
                continue
            try_split_folio(folio)
            entry = mm.pmds.get(pmd_index(addr))
        if entry is None or isinstance(entry, PmdHuge):
            continue
        for folio, entries in _whole_folio_runs(entry.ptes, addr, next_addr):
            if folio_test_lru(folio) and folio_mapcount(folio) == folio.nr_pages:
                handle(folio, entries, folio_list)
        if pageout:
            reclaim_pages(folio_list)
