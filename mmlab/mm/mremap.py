"""mremap() (~ mm/mremap.c): shrink a mapping, grow it in place, or move its VMA and
page-table entries to a new address; the folios stay where they are."""

from __future__ import annotations

import errno

from ..include.mm import page_align
from ..include.mm_types import VmAreaStruct
from ..include.pgtable import PmdHuge, PteTable, pmd_index, pte_index
from ..include.rmap import anon_vma_clone, unlink_anon_vmas
from ..state import trace
from ..uapi import HPAGE_PMD_SIZE, MREMAP_FIXED, MREMAP_MAYMOVE, PAGE_SIZE
from .huge_memory import __split_huge_pmd
from .mmap import do_munmap, get_unmapped_area, insert_vma, split_vma


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
    old_len, new_len = page_align(old_len), page_align(new_len)
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
