"""mlock: VM_LOCKED VMAs, PG_mlocked folios, mlock_count and the unevictable LRU (~ mm/mlock.c).

A folio is mlocked when some VM_LOCKED VMA maps it and the kernel noticed: at fault
(mlock_new_folio), when mlock() walks the range (mlock_pte_range), or later when reclaim
finds it in a locked VMA ("restore the mlock which got missed", in folio_referenced_one and
try_to_unmap_one). A large folio is mlocked only when it lies wholly inside the locked
range and is fully mapped there (Yin Fengwei, "support large folio for mlock", 6.7).
``mlock_count`` counts the VMAs that mlocked it, and may undercount; reclaim fixes that.
"""

from __future__ import annotations

import errno

from ..include.mm_types import VM_LOCKED, VM_LOCKED_MASK, VM_LOCKONFAULT, VM_READ, VM_WRITE
from ..include.page_flags import PG, folio_test_large, folio_test_lru, folio_test_mlocked, folio_test_unevictable
from ..include.pgtable import PmdHuge, pmd_index, pte_index
from ..state import count_vm_events, current, trace
from ..uapi import HPAGE_PMD_SIZE, MCL_CURRENT, MCL_FUTURE, MCL_ONFAULT, MLOCK_ONFAULT, PAGE_SIZE
from .mmap import apply_to_vmas, vma_modify_flags


def _set_mlocked(folio) -> None:
    if not folio_test_mlocked(folio):
        folio.flags |= PG.mlocked
        current.machine.vmstat["nr_mlock"] += folio.nr_pages
        count_vm_events("unevictable_pgs_mlocked", folio.nr_pages)


def mlock_folio(folio) -> None:
    """Mark a mapped folio mlocked and move it to the unevictable list (or bump its count)."""
    from .swap import lruvec_add_folio, lruvec_del_folio

    _set_mlocked(folio)
    if not folio_test_lru(folio):
        trace("mlock_folio", "PG_mlocked set; the folio is off the LRU, so reclaim will cull it later", folio)
        return
    if folio_test_unevictable(folio):
        folio.mlock_count += 1
        trace("mlock_folio", f"already unevictable: mlock_count now {folio.mlock_count}", folio)
        return
    lruvec_del_folio(folio)
    folio.flags &= ~PG.active
    folio.flags |= PG.unevictable
    folio.mlock_count = 1
    lruvec_add_folio(folio)
    count_vm_events("unevictable_pgs_culled", folio.nr_pages)
    trace("mlock_folio", "PG_mlocked set; moved to the unevictable LRU, mlock_count 1", folio)


def mlock_new_folio(folio) -> None:
    """A folio faulted into a VM_LOCKED VMA goes straight to the unevictable list."""
    from .swap import lruvec_add_folio

    _set_mlocked(folio)
    folio.flags |= PG.unevictable
    folio.mlock_count = 1
    count_vm_events("unevictable_pgs_culled", folio.nr_pages)
    lruvec_add_folio(folio)
    trace("mlock_new_folio", "new folio in a VM_LOCKED VMA: mlocked, on the unevictable LRU", folio)


def munlock_folio(folio) -> None:
    """Drop one mlock; at mlock_count 0 clear PG_mlocked and move the folio back."""
    from .swap import lruvec_add_folio, lruvec_del_folio

    on_lru = folio_test_lru(folio)
    if on_lru and folio_test_unevictable(folio):
        if folio.mlock_count:
            folio.mlock_count -= 1
        if folio.mlock_count:
            trace("munlock_folio", f"mlock_count now {folio.mlock_count}: still mlocked", folio)
            return
    if not folio_test_mlocked(folio) and not (on_lru and folio_test_unevictable(folio)):
        trace("munlock_folio", "the folio was not mlocked: nothing to undo", folio)
        return
    if folio_test_mlocked(folio):
        folio.flags &= ~PG.mlocked
        current.machine.vmstat["nr_mlock"] -= folio.nr_pages
        stranded = not on_lru and folio_test_unevictable(folio)
        count_vm_events("unevictable_pgs_stranded" if stranded else "unevictable_pgs_munlocked", folio.nr_pages)
    if on_lru and folio_test_unevictable(folio):
        lruvec_del_folio(folio)
        folio.flags &= ~PG.unevictable
        lruvec_add_folio(folio)
        count_vm_events("unevictable_pgs_rescued", folio.nr_pages)
    trace("munlock_folio", "last mlock gone: PG_mlocked cleared" + (", back on an evictable list" if on_lru else ""),
          folio)


def mlock_vma_folio(folio, vma) -> None:
    if vma.vm_flags & VM_LOCKED:
        mlock_folio(folio)


def munlock_vma_folio(folio, vma) -> None:
    """Called whenever a mapping is removed from a VM_LOCKED VMA: always munlock; if the
    folio is still mapped locked elsewhere, reclaim will find out and mlock it again."""
    if vma.vm_flags & VM_LOCKED:
        munlock_folio(folio)


def folio_within_range(folio, vma, start: int, end: int) -> bool:
    from ..include.mm_types import vma_address

    first = vma_address(vma, folio.index)
    return max(start, vma.vm_start) <= first and first + folio.nr_pages * PAGE_SIZE <= min(end, vma.vm_end)


def allow_mlock_munlock(folio, vma, start: int, end: int, step: int) -> bool:
    """munlock is always allowed; mlock of a large folio needs it wholly in range, fully mapped."""
    if not vma.vm_flags & VM_LOCKED or not folio_test_large(folio):
        return True
    return folio_within_range(folio, vma, start, end) and step == folio.nr_pages


def mlock_pte_range(vma, start: int, end: int) -> None:
    """The page walk of mlock()/munlock(): mlock or munlock every folio mapped in the range."""
    lock = mlock_folio if vma.vm_flags & VM_LOCKED else munlock_folio
    pmds = vma.vm_mm.pmds
    addr = start
    while addr < end:
        next_pmd = min(end, (addr & ~(HPAGE_PMD_SIZE - 1)) + HPAGE_PMD_SIZE)
        entry = pmds.get(pmd_index(addr))
        if isinstance(entry, PmdHuge):
            if not entry.folio.flags & PG.zero:
                lock(entry.folio)
        elif entry is not None:
            while addr < next_pmd:
                pte = entry.ptes[pte_index(addr)]
                step = 1
                if pte is not None and not pte.folio.flags & PG.zero:
                    folio = pte.folio
                    if folio_test_large(folio):
                        step = _mapped_run(entry.ptes, pte_index(addr), folio, pte.page, next_pmd - addr)
                    if allow_mlock_munlock(folio, vma, start, end, step):
                        lock(folio)
                addr += step * PAGE_SIZE
        addr = next_pmd


def _mapped_run(ptes, first: int, folio, page: int, limit_bytes: int) -> int:
    """folio_mlock_step(): how many consecutive PTEs from ``first`` map this folio."""
    limit = min(limit_bytes // PAGE_SIZE, folio.nr_pages - page)
    nr = 1
    while nr < limit and ptes[first + nr] is not None and ptes[first + nr].folio is folio:
        nr += 1
    return nr


def mlock_fixup(vma, start: int, end: int, newflags: int) -> None:
    """Give [start, end) of one VMA new lock flags, splitting the VMA as needed, and mlock or
    munlock what is already mapped there."""
    oldflags = vma.vm_flags
    vma = vma_modify_flags(vma, start, end, newflags)
    if newflags & VM_LOCKED and oldflags & VM_LOCKED:
        return  # no work to do, and mlocking twice would be wrong
    mlock_pte_range(vma, start, end)


def apply_vma_lock_flags(mm, start: int, length: int, flags: int) -> None:
    def fixup(vma, lo: int, hi: int) -> None:
        newflags = (vma.vm_flags & ~VM_LOCKED_MASK) | flags
        if newflags != vma.vm_flags:
            mlock_fixup(vma, lo, hi, newflags)

    apply_to_vmas(mm, start, start + length, fixup)


def check_range_mapped(mm, start: int, end: int) -> None:
    """mlock/munlock/mprotect fail with ENOMEM if any part of the range is unmapped."""
    addr = start
    for vma in mm.vmas_in(start, end):
        if vma.vm_start > addr:
            break
        addr = vma.vm_end
    if addr < end:
        raise OSError(errno.ENOMEM, "part of the range is not mapped")


def do_mlock(mm, start: int, length: int, flags: int) -> None:
    """mlock() and mlock2(): lock the VMAs, then (unless MLOCK_ONFAULT) fault in every page.
    A PROT_NONE VMA is locked but cannot be faulted in: ENOMEM, and populating stops there
    (populate_vma_page_range() in mm/gup.c returns -EFAULT, which mlock reports as ENOMEM)."""
    if flags & ~MLOCK_ONFAULT:
        raise OSError(errno.EINVAL, "mlock2: unknown flags")
    start, end = _page_range(start, length)
    vm_flags = VM_LOCKED | (VM_LOCKONFAULT if flags & MLOCK_ONFAULT else 0)
    apply_vma_lock_flags(mm, start, end - start, vm_flags)
    for vma in mm.vmas_in(start, end):
        if not mm_populate(vma, max(start, vma.vm_start), min(end, vma.vm_end)):
            raise OSError(errno.ENOMEM, f"mlock: {vma!r} is PROT_NONE: locked, but nothing can be faulted in")


def mm_populate(vma, start: int, end: int) -> bool:
    """Fault in [start, end) of a VM_LOCKED VMA, with write faults if it is writable (so
    each page gets a folio of its own, not the zero page). Nothing to do for
    VM_LOCKONFAULT; impossible for PROT_NONE (returns False)."""
    from .memory import populate_vma_page_range

    if vma.vm_flags & VM_LOCKONFAULT:
        return True
    if not vma.vm_flags & (VM_READ | VM_WRITE):
        return False
    populate_vma_page_range(vma, start, end, write=bool(vma.vm_flags & VM_WRITE))
    return True


def do_mlockall(mm, flags: int) -> None:
    """mlockall(): MCL_CURRENT locks every VMA there is (and populates them, unless
    MCL_ONFAULT; a PROT_NONE one is skipped, no error); MCL_FUTURE makes every later
    mapping start locked (mm->def_flags). apply_mlockall_flags() in mm/mlock.c."""
    if not flags or flags & ~(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT) or flags == MCL_ONFAULT:
        raise OSError(errno.EINVAL, "mlockall: flags must hold MCL_CURRENT and/or MCL_FUTURE "
                      "(MCL_ONFAULT only with one of them)")
    onfault = VM_LOCKONFAULT if flags & MCL_ONFAULT else 0
    mm.def_flags = VM_LOCKED | onfault if flags & MCL_FUTURE else 0
    if flags & MCL_CURRENT:
        _lock_all(mm, VM_LOCKED | onfault)
        for vma in list(mm.vmas):
            mm_populate(vma, vma.vm_start, vma.vm_end)


def do_munlockall(mm) -> None:
    """munlockall(): unlock every VMA and forget MCL_FUTURE."""
    mm.def_flags = 0
    _lock_all(mm, 0)


def _lock_all(mm, to_add: int) -> None:
    vma = mm.vmas[0] if mm.vmas else None
    while vma is not None:
        newflags = (vma.vm_flags & ~VM_LOCKED_MASK) | to_add
        end = vma.vm_end
        if newflags != vma.vm_flags:
            mlock_fixup(vma, vma.vm_start, end, newflags)
        vma = next((v for v in mm.vmas if v.vm_start >= end), None)


def do_munlock(mm, start: int, length: int) -> None:
    start, end = _page_range(start, length)
    apply_vma_lock_flags(mm, start, end - start, 0)


def _page_range(start: int, length: int) -> tuple[int, int]:
    """mlock rounds the start down and the end up to whole pages."""
    end = start + length
    return start & ~(PAGE_SIZE - 1), -(-end // PAGE_SIZE) * PAGE_SIZE
