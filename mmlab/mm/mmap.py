"""VMAs: creating, splitting, merging and removing them (~ mm/mmap.c, mm/vma.c, mm/mprotect.c).

When a VMA boundary lands inside a PMD-mapped THP, the PMD is split first
(vma_adjust_trans_huge), so a huge PMD never spans two VMAs. The folio itself stays large.
"""

from __future__ import annotations

import errno

from ..include.mm_types import VM_LOCKED, VM_READ, VM_WRITE, VmAreaStruct
from ..state import trace
from ..uapi import HPAGE_PMD_SIZE, MREMAP_FIXED, MREMAP_MAYMOVE, PAGE_SHIFT, PAGE_SIZE, PROT_READ, PROT_WRITE

MMAP_BASE = 0x7F0000000000


def get_unmapped_area(mm, length: int) -> int:
    """Place a new mapping 2 MiB aligned above every existing one, with a 2 MiB gap so that
    neighbouring mappings never merge (the live lab aligns its mappings the same way)."""
    top = max((v.vm_end for v in mm.vmas), default=MMAP_BASE)
    return -(-(top + HPAGE_PMD_SIZE) // HPAGE_PMD_SIZE) * HPAGE_PMD_SIZE


def prot_to_vm_flags(prot: int) -> int:
    return (VM_READ if prot & (PROT_READ | PROT_WRITE) else 0) | (VM_WRITE if prot & PROT_WRITE else 0)


def do_mmap(mm, length: int, prot: int = PROT_READ | PROT_WRITE) -> int:
    """mmap(NULL, length, prot, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0). After
    mlockall(MCL_FUTURE) the VMA is born VM_LOCKED and, unless MCL_ONFAULT, populated at
    once (mm_populate), with write faults if it is writable."""
    from .mlock import mm_populate

    if length <= 0:
        raise OSError(errno.EINVAL, "mmap: length must be positive")
    length = -(-length // PAGE_SIZE) * PAGE_SIZE
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
    from .huge_memory import vma_adjust_trans_huge
    from .rmap import anon_vma_clone

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
    from .rmap import unlink_anon_vmas

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
    from .memory import unmap_vma_range
    from .rmap import unlink_anon_vmas

    if start % PAGE_SIZE or length <= 0:
        raise OSError(errno.EINVAL, "munmap: address must be page aligned and length positive")
    end = start + -(-length // PAGE_SIZE) * PAGE_SIZE
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


def do_mprotect(mm, start: int, length: int, prot: int) -> None:
    """mprotect(): new VM_READ/VM_WRITE on the range, and the entries updated to match (a huge
    PMD stays huge when the range covers all of it)."""
    from .memory import change_protection

    if start % PAGE_SIZE:
        raise OSError(errno.EINVAL, "mprotect: address must be page aligned")
    if prot & ~(PROT_READ | PROT_WRITE):
        raise OSError(errno.EINVAL, "mprotect: the model supports PROT_NONE, PROT_READ and PROT_WRITE")

    def mprotect_fixup(vma, lo: int, hi: int) -> None:
        newflags = (vma.vm_flags & ~(VM_READ | VM_WRITE)) | prot_to_vm_flags(prot)
        if newflags == vma.vm_flags:
            return
        change_protection(vma_modify_flags(vma, lo, hi, newflags), lo, hi)

    apply_to_vmas(mm, start, start + -(-length // PAGE_SIZE) * PAGE_SIZE, mprotect_fixup)


def do_mremap(mm, addr: int, old_len: int, new_len: int, flags: int, new_addr: int) -> int:
    """mremap(): shrink a mapping, grow it in place, or move it (MREMAP_MAYMOVE; to
    ``new_addr`` with MREMAP_FIXED, unmapping what was there). Returns its new address.
    The checks and their errnos follow mm/mremap.c: EINVAL for bad flags, an unaligned
    address, a zero new length or overlapping ranges; EFAULT when nothing is mapped at
    ``addr`` or the old range is not inside one VMA; ENOMEM when it cannot grow in place
    and may not move. The model leaves out MREMAP_DONTUNMAP and, for a VM_LOCKED mapping,
    populating what it grew by."""
    if flags & ~(MREMAP_MAYMOVE | MREMAP_FIXED):
        raise OSError(errno.EINVAL, "mremap: the model knows MREMAP_MAYMOVE and MREMAP_FIXED only")
    if flags & MREMAP_FIXED and not flags & MREMAP_MAYMOVE:
        raise OSError(errno.EINVAL, "mremap: MREMAP_FIXED needs MREMAP_MAYMOVE")
    if addr % PAGE_SIZE:
        raise OSError(errno.EINVAL, "mremap: the old address must be page aligned")
    old_len, new_len = -(-old_len // PAGE_SIZE) * PAGE_SIZE, -(-new_len // PAGE_SIZE) * PAGE_SIZE
    if not new_len:
        raise OSError(errno.EINVAL, "mremap: the new length must not be zero")
    if mm.find_vma(addr) is None:
        raise OSError(errno.EFAULT, f"mremap: nothing is mapped at {addr:#x}")
    if flags & MREMAP_FIXED:
        if new_addr % PAGE_SIZE:
            raise OSError(errno.EINVAL, "mremap: the new address must be page aligned")
        if addr < new_addr + new_len and new_addr < addr + old_len:
            raise OSError(errno.EINVAL, "mremap: the old and new ranges overlap")
        do_munmap(mm, new_addr, new_len)
        if old_len > new_len:
            do_munmap(mm, addr + new_len, old_len - new_len)
            old_len = new_len
        return move_vma(_vma_to_resize(mm, addr, old_len), addr, old_len, new_addr, new_len)
    if old_len >= new_len:
        if old_len > new_len:
            do_munmap(mm, addr + new_len, old_len - new_len)
        return addr
    vma = _vma_to_resize(mm, addr, old_len)
    if vma.vm_end == addr + old_len and not mm.vmas_in(vma.vm_end, addr + new_len):
        vma.vm_end = addr + new_len
        trace("do_mremap", f"grown in place to {addr:#x}-{addr + new_len:#x}")
        return addr
    if not flags & MREMAP_MAYMOVE:
        raise OSError(errno.ENOMEM, "mremap: no room to grow in place, and MREMAP_MAYMOVE not given")
    return move_vma(vma, addr, old_len, get_unmapped_area(mm, new_len), new_len)


def _vma_to_resize(mm, addr: int, old_len: int):
    vma = mm.find_vma(addr)
    if vma is None or addr + old_len > vma.vm_end:
        raise OSError(errno.EFAULT, "mremap: the old range is not inside one mapping")
    if not old_len:
        raise OSError(errno.EINVAL, "mremap: an old length of zero works only for shared mappings")
    return vma


def move_vma(vma, old_addr: int, old_len: int, new_addr: int, new_len: int) -> int:
    """Move [old_addr, old_addr + old_len) of ``vma`` to a new VMA at ``new_addr`` of
    ``new_len`` bytes. The new VMA keeps the old page offset, so the folios' index and
    anon_vma still find it (copy_vma()); their page-table entries move, not the folios."""
    from .rmap import anon_vma_clone, unlink_anon_vmas

    if vma.vm_start < old_addr:
        vma = split_vma(vma, old_addr)
    if old_addr + old_len < vma.vm_end:
        split_vma(vma, old_addr + old_len)
    mm = vma.vm_mm
    new = VmAreaStruct(mm, new_addr, new_addr + new_len, vma.vm_flags, vma.vm_pgoff)
    anon_vma_clone(new, vma)
    insert_vma(mm, new)
    move_page_tables(vma, old_addr, new, new_addr, old_len)
    unlink_anon_vmas(vma)
    mm.vmas.remove(vma)
    trace("move_vma", f"moved {old_addr:#x}-{old_addr + old_len:#x} to {new_addr:#x}")
    return new_addr


def move_page_tables(vma, old_addr: int, new_vma, new_addr: int, length: int) -> None:
    """Move the entries of ``length`` bytes. A huge PMD moves whole (move_huge_pmd) when
    both addresses are 2 MiB aligned and the whole 2 MiB moves; otherwise it is split
    first and its PTEs move one by one, so the THP ends up PTE-mapped at the new place."""
    from ..include.pgtable import PmdHuge, PteTable, pmd_index, pte_index
    from .huge_memory import __split_huge_pmd

    mm = vma.vm_mm
    done = 0
    while done < length:
        old, new = old_addr + done, new_addr + done
        extent = min(length - done, HPAGE_PMD_SIZE - old % HPAGE_PMD_SIZE, HPAGE_PMD_SIZE - new % HPAGE_PMD_SIZE)
        entry = mm.pmds.get(pmd_index(old))
        if isinstance(entry, PmdHuge):
            if extent == HPAGE_PMD_SIZE:
                mm.pmds[pmd_index(new)] = mm.pmds.pop(pmd_index(old))
                mm.deposited[pmd_index(new)] = mm.deposited.pop(pmd_index(old))
                trace("move_huge_pmd", f"huge PMD moved whole from {old:#x} to {new:#x}", entry.folio)
                done += extent
                continue
            __split_huge_pmd(vma, old)
            entry = mm.pmds.get(pmd_index(old))
        if entry is not None:
            dst = mm.pmds.setdefault(pmd_index(new), PteTable())
            for offset in range(0, extent, PAGE_SIZE):
                i, j = pte_index(old + offset), pte_index(new + offset)
                dst.ptes[j], entry.ptes[i] = entry.ptes[i], None
            for index in {pmd_index(old), pmd_index(new)}:
                if mm.pmds[index].empty():
                    del mm.pmds[index]
        done += extent
