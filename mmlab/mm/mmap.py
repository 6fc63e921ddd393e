"""VMAs: creating, splitting, merging and removing them, and an address space's copy at
fork and teardown at exit (~ mm/mmap.c, mm/vma.c).

When a VMA boundary lands inside a PMD-mapped THP, the PMD is split first
(vma_adjust_trans_huge), so a huge PMD never spans two VMAs. The folio itself stays large.
"""

from __future__ import annotations

import errno

from ..include.mm import VM_LOCKED, VM_LOCKED_MASK, VM_READ, VM_WRITE, page_align
from ..include.mm_types import VmAreaStruct
from ..include.pgtable import pmd_align_down
from ..include.rmap import anon_vma_clone, anon_vma_fork, unlink_anon_vmas
from ..state import trace
from ..uapi import HPAGE_PMD_SIZE, PAGE_SHIFT, PAGE_SIZE, PROT_READ, PROT_WRITE
from .gup import mm_populate
from .huge_memory import vma_adjust_trans_huge
from .memory import copy_page_range, free_pgtables, unmap_vma_range

MMAP_BASE = 0x7F0000000000


def get_unmapped_area(mm, length: int) -> int:
    """Place a new mapping 2 MiB aligned above every existing one, with a 2 MiB gap so that
    neighbouring mappings never merge (the live lab aligns its mappings the same way)."""
    top = max((v.vm_end for v in mm.vmas), default=MMAP_BASE)
    return pmd_align_down(top + HPAGE_PMD_SIZE - 1) + HPAGE_PMD_SIZE


def prot_to_vm_flags(prot: int) -> int:
    return (VM_READ if prot & (PROT_READ | PROT_WRITE) else 0) | (VM_WRITE if prot & PROT_WRITE else 0)


def do_mmap(mm, length: int, prot: int = PROT_READ | PROT_WRITE) -> int:
    """mmap(NULL, length, prot, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0). After
    mlockall(MCL_FUTURE) the VMA is born VM_LOCKED and, unless MCL_ONFAULT, populated at
    once (mm_populate), with write faults if it is writable."""
    if length <= 0:
        raise OSError(errno.EINVAL, "mmap: length must be positive")
    length = page_align(length)
    start = get_unmapped_area(mm, length)
    vma = VmAreaStruct(mm, start, start + length, prot_to_vm_flags(prot) | mm.def_flags, start >> PAGE_SHIFT)
    insert_vma(mm, vma)
    trace("do_mmap", f"new anonymous VMA {start:#x}-{start + length:#x}")
    if vma.vm_flags & VM_LOCKED:
        mm_populate(vma, start, start + length)
    return start


def insert_vma(mm, vma) -> None:
    mm.vmas.append(vma)
    mm.vmas.sort(key=lambda v: v.vm_start)


def split_vma(vma, addr: int) -> VmAreaStruct:
    """Cut a VMA in two at ``addr``; return the upper part."""
    vma_adjust_trans_huge(vma, addr)
    mm = vma.vm_mm
    upper = VmAreaStruct(mm, addr, vma.vm_end, vma.vm_flags,
                         vma.vm_pgoff + ((addr - vma.vm_start) >> PAGE_SHIFT))
    anon_vma_clone(upper, vma)
    vma.vm_end = addr
    insert_vma(mm, upper)
    return upper


def _can_merge(a, b) -> bool:
    """vma_merge's test for two adjacent anonymous VMAs."""
    return (a.vm_end == b.vm_start and a.vm_flags == b.vm_flags
            and b.vm_pgoff == a.vm_pgoff + ((a.vm_end - a.vm_start) >> PAGE_SHIFT)
            and (a.anon_vma is None or b.anon_vma is None or a.anon_vma is b.anon_vma)
            and len(a.anon_vma_chain) <= 1 and len(b.anon_vma_chain) <= 1)


def _merge(a, b) -> VmAreaStruct:
    mm = a.vm_mm
    a.vm_end = b.vm_end
    if a.anon_vma is None and b.anon_vma is not None:
        a.anon_vma, a.anon_vma_chain = b.anon_vma, b.anon_vma_chain
        for avc in a.anon_vma_chain:
            avc.vma = a
        b.anon_vma_chain = []
    unlink_anon_vmas(b)
    mm.vmas.remove(b)
    return a


def vma_modify_flags(vma, start: int, end: int, newflags: int) -> VmAreaStruct:
    """Give [start, end) of ``vma`` new flags: split off the parts outside, then merge with a
    neighbour whose flags now match. Returns the VMA that covers [start, end)."""
    if start > vma.vm_start:
        vma = split_vma(vma, start)
    if end < vma.vm_end:
        split_vma(vma, end)
    vma.vm_flags = newflags
    mm = vma.vm_mm
    i = mm.vmas.index(vma)
    if i + 1 < len(mm.vmas) and _can_merge(vma, mm.vmas[i + 1]):
        vma = _merge(vma, mm.vmas[i + 1])
    if i > 0 and _can_merge(mm.vmas[i - 1], vma):
        vma = _merge(mm.vmas[i - 1], vma)
    return vma


def do_munmap(mm, start: int, length: int) -> None:
    """munmap(): zap the pages, then drop the VMAs (splitting the ones cut by the range)."""
    if start % PAGE_SIZE or length <= 0:
        raise OSError(errno.EINVAL, "munmap: address must be page aligned and length positive")
    end = start + page_align(length)
    for vma in list(mm.vmas_in(start, end)):
        if vma.vm_start < start:
            vma = split_vma(vma, start)
        if end < vma.vm_end:
            split_vma(vma, end)
        unmap_vma_range(vma, vma.vm_start, vma.vm_end)
        unlink_anon_vmas(vma)
        mm.vmas.remove(vma)


def apply_to_vmas(mm, start: int, end: int, fixup) -> None:
    """The loop mprotect() and mlock() share: ``fixup(vma, lo, hi)`` for each VMA of
    [start, end) in address order. Each VMA is looked up after the previous fixup, which may
    have split or merged VMAs. A hole stops the walk with ENOMEM; what was changed before
    it stays changed (do_mprotect_pkey() in mm/mprotect.c, apply_vma_lock_flags() in mm/mlock.c)."""
    addr = start
    while addr < end:
        vma = mm.find_vma(addr)
        if vma is None:
            raise OSError(errno.ENOMEM, f"nothing is mapped at {addr:#x}")
        hi = min(end, vma.vm_end)
        fixup(vma, addr, hi)
        addr = hi


def dup_mmap(mm, oldmm) -> None:
    """fork: the child gets a copy of every VMA (without VM_LOCKED, which is not inherited),
    linked to the parent's anon_vmas, and shares every mapped page copy-on-write
    (kernel/fork.c's dup_mmap())."""
    for vma in oldmm.vmas:
        new = VmAreaStruct(mm, vma.vm_start, vma.vm_end, vma.vm_flags & ~VM_LOCKED_MASK, vma.vm_pgoff)
        mm.vmas.append(new)
        anon_vma_fork(new, vma)
        copy_page_range(new, vma)


def exit_mmap(mm) -> None:
    """exit: unmap every VMA, so folios no one else maps are freed, then drop the page tables."""
    for vma in list(mm.vmas):
        unmap_vma_range(vma, vma.vm_start, vma.vm_end)
        unlink_anon_vmas(vma)
    mm.vmas.clear()
    free_pgtables(mm)
