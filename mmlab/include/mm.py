"""The folio and VMA helpers of include/linux/mm.h (and mmdebug.h) that all of mm/ uses:
vm_flags, reference and map counts, the zero-page test, page alignment, and ModelBug for the
VM_BUG_ON the model checks.

Map counts follow the kernel's conventions: ``_mapcount``, ``_large_mapcount`` and
``_entire_mapcount`` start at -1 (the kernel stores "mappings - 1"); these helpers add the
1 back.
"""

from __future__ import annotations

from ..uapi import PAGE_SHIFT, PAGE_SIZE
from .page_flags import PG

# vm_area_struct->vm_flags
VM_READ = 0x1
VM_WRITE = 0x2
VM_LOCKED = 0x2000
VM_HUGEPAGE = 0x20000000
VM_NOHUGEPAGE = 0x40000000
VM_LOCKONFAULT = 0x100000000
VM_LOCKED_MASK = VM_LOCKED | VM_LOCKONFAULT

# The flags a new anonymous folio starts with (folio_add_new_anon_rmap + __folio_set_swapbacked).
PG_ANON_NEW = PG.anon | PG.swapbacked | PG.uptodate

GUP_PIN_COUNTING_BIAS = 1024  # how a pin of a small folio is counted


class ModelBug(AssertionError):
    """An invariant the kernel relies on was broken inside the model (the kernel's VM_BUG_ON)."""


def vma_flags_str(flags: int) -> str:
    """The two-letter names /proc/PID/smaps prints on its VmFlags line."""
    names = [("rd", VM_READ), ("wr", VM_WRITE), ("lo", VM_LOCKED), ("hg", VM_HUGEPAGE), ("nh", VM_NOHUGEPAGE)]
    return " ".join(n for n, f in names if flags & f)


def page_align(addr: int) -> int:
    """PAGE_ALIGN(): round up to a page boundary."""
    return -(-addr // PAGE_SIZE) * PAGE_SIZE


def page_align_down(addr: int) -> int:
    """PAGE_ALIGN_DOWN(): round down to a page boundary."""
    return addr & ~(PAGE_SIZE - 1)


def is_zero_folio(folio) -> bool:
    """Is this the zero page or the huge zero page? (The kernel asks is_zero_folio() and, in
    huge_mm.h, is_huge_zero_folio(); the model marks both with PG_zero, KPF_ZERO_PAGE.)"""
    return bool(folio.flags & PG.zero)


def folio_ref_count(folio) -> int:
    return folio._refcount


def folio_get(folio) -> None:
    folio._refcount += 1


def folio_mapcount(folio) -> int:
    """How many page-table entries map some part of the folio (a PMD counts once)."""
    if folio.order == 0:
        return folio._mapcount[0] + 1
    return folio._large_mapcount + 1


def folio_entire_mapcount(folio) -> int:
    return folio._entire_mapcount + 1


def folio_mapped(folio) -> bool:
    return folio_mapcount(folio) > 0


def folio_precise_page_mapcount(folio, page: int) -> int:
    """What /proc/kpagecount reports for one page: its PTE mappings plus the PMD ones."""
    return folio._mapcount[page] + 1 + folio_entire_mapcount(folio)


def folio_maybe_dma_pinned(folio) -> bool:
    if folio.order:
        return folio._pincount > 0
    return folio._refcount >= GUP_PIN_COUNTING_BIAS


def linear_page_index(vma, address: int) -> int:
    """The page offset of ``address`` in the VMA's address space (include/linux/pagemap.h)."""
    return ((address - vma.vm_start) >> PAGE_SHIFT) + vma.vm_pgoff
