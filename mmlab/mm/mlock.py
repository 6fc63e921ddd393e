"""mlock() and munlock() (~ mm/mlock.c): VM_LOCKED VMAs and the page walk that mlocks or
munlocks what they map.

A folio is mlocked when some VM_LOCKED VMA maps it and the kernel noticed: at fault
(mlock_new_folio), when mlock() walks the range (mlock_pte_range), or later when reclaim
finds it in a locked VMA ("restore the mlock which got missed", in folio_referenced_one and
try_to_unmap_one). A large folio is mlocked only when it lies wholly inside the locked
range and is fully mapped there (Yin Fengwei, "support large folio for mlock", 6.7).
The folio side (mlock_folio, munlock_folio, mlock_new_folio, PG_mlocked, mlock_count and
the unevictable LRU) is in mmlab.include.internal, beside the hooks that call it.
"""

from __future__ import annotations

import errno

from ..include.internal import folio_pte_batch, mlock_folio, munlock_folio, vma_address
from ..include.mm import (
    VM_LOCKED,
    VM_LOCKED_MASK,
    VM_LOCKONFAULT,
    is_zero_folio,
    page_align,
    page_align_down,
)
from ..include.page_flags import folio_test_large
from ..include.pgtable import PmdHuge, pmd_addr_end, pmd_index, pte_index
from ..uapi import MCL_CURRENT, MCL_FUTURE, MCL_ONFAULT, MLOCK_ONFAULT, PAGE_SIZE
from .gup import mm_populate
from .mmap import apply_to_vmas, vma_modify_flags


def folio_within_range(folio, vma, start: int, end: int) -> bool:
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
        next_pmd = pmd_addr_end(addr, end)
        entry = pmds.get(pmd_index(addr))
        if isinstance(entry, PmdHuge):
            if not is_zero_folio(entry.folio):
                lock(entry.folio)
        elif entry is not None:
            while addr < next_pmd:
                pte = entry.ptes[pte_index(addr)]
                step = 1
                if pte is not None and not is_zero_folio(pte.folio):
                    folio = pte.folio
                    if folio_test_large(folio):
                        step = folio_mlock_step(folio, entry.ptes, pte_index(addr), next_pmd - addr)
                    if allow_mlock_munlock(folio, vma, start, end, step):
                        lock(folio)
                addr += step * PAGE_SIZE
        addr = next_pmd


def folio_mlock_step(folio, ptes: list, first: int, size: int) -> int:
    """How many PTEs from ``first`` (within ``size`` bytes) map this large folio's pages in
    a row: the step mlock_pte_range() takes."""
    return folio_pte_batch(ptes, first, min(size // PAGE_SIZE, folio.nr_pages - ptes[first].page))


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
    return page_align_down(start), page_align(start + length)
