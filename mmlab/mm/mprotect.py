"""mprotect() (~ mm/mprotect.c): new VM_READ/VM_WRITE on a range, and its present entries
updated to match."""

from __future__ import annotations

import errno

from ..include.mm import VM_READ, VM_WRITE, is_zero_folio, page_align
from ..include.pgtable import PmdHuge, pmd_index, pte_index
from ..uapi import HPAGE_PMD_SIZE, PAGE_SIZE, PROT_READ, PROT_WRITE
from .huge_memory import change_huge_pmd
from .mmap import apply_to_vmas, prot_to_vm_flags, vma_modify_flags


def change_protection(vma, start: int, end: int) -> None:
    """mprotect's update of the present entries of [start, end), to the VMA's new flags.
    Without VM_WRITE every entry is write-protected. With it, the entries of pages this mm
    owns exclusively become writable again, so writing them needs no fault; shared pages
    and the zero page stay read-only for copy-on-write (MM_CP_TRY_CHANGE_WRITABLE and
    can_change_pte_writable(); a huge PMD is change_huge_pmd()'s)."""
    writable = bool(vma.vm_flags & VM_WRITE)
    mm = vma.vm_mm
    for index in range(pmd_index(start), pmd_index(end - 1) + 1):
        entry = mm.pmds.get(index)
        if isinstance(entry, PmdHuge):
            change_huge_pmd(vma, entry)
        elif entry is not None:
            lo = max(start, index * HPAGE_PMD_SIZE)
            hi = min(end, (index + 1) * HPAGE_PMD_SIZE)
            for pte in entry.ptes[pte_index(lo):pte_index(hi - 1) + 1]:
                if pte is not None:
                    pte.write = writable and not is_zero_folio(pte.folio) and bool(pte.folio.anon_exclusive[pte.page])


def do_mprotect(mm, start: int, length: int, prot: int) -> None:
    """mprotect(): new VM_READ/VM_WRITE on the range, and the entries updated to match (a huge
    PMD stays huge when the range covers all of it)."""
    if start % PAGE_SIZE:
        raise OSError(errno.EINVAL, "mprotect: address must be page aligned")
    if prot & ~(PROT_READ | PROT_WRITE):
        raise OSError(errno.EINVAL, "mprotect: the model supports PROT_NONE, PROT_READ and PROT_WRITE")

    def mprotect_fixup(vma, lo: int, hi: int) -> None:
        newflags = (vma.vm_flags & ~(VM_READ | VM_WRITE)) | prot_to_vm_flags(prot)
        if newflags == vma.vm_flags:
            return
        change_protection(vma_modify_flags(vma, lo, hi, newflags), lo, hi)

    apply_to_vmas(mm, start, start + page_align(length), mprotect_fixup)
