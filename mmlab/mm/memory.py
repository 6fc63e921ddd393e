"""Faults, zapping, fork's page-table copy and copy-on-write (~ mm/memory.c).

THP faults and everything done to a huge PMD are in huge_memory.py; this module decides
when to go there (thp_vma_allowable, in mmlab.include.huge_mm).
"""

from __future__ import annotations

from ..include.highmem import folio_store, page_copy, page_load
from ..include.huge_mm import thp_vma_allowable
from ..include.internal import folio_pte_batch
from ..include.mm import (
    PG_ANON_NEW,
    VM_READ,
    VM_WRITE,
    folio_get,
    folio_mapcount,
    folio_maybe_dma_pinned,
    is_zero_folio,
    page_align_down,
)
from ..include.page_flags import folio_test_large
from ..include.pgtable import PmdHuge, Pte, PteTable, pmd_addr_end, pmd_index, pte_index
from ..include.rmap import anon_vma_prepare, folio_add_anon_rmap_ptes, folio_add_new_anon_rmap, folio_remove_rmap_ptes
from ..state import current, kernel, trace
from ..uapi import HPAGE_PMD_SIZE, PAGE_SIZE, SegmentationFault
from .huge_memory import (
    __split_huge_pmd,
    copy_huge_pmd,
    do_huge_pmd_anonymous_page,
    do_huge_pmd_wp_page,
    folio_maybe_mapped_shared,
    touch_pmd,
    zap_huge_pmd,
)
from .page_alloc import folio_alloc
from .swap import folio_add_lru_vma, folio_put, folio_put_refs


def handle_mm_fault(vma, address: int, write: bool) -> None:
    """Make ``address`` present (and writable, for a write) in ``vma``."""
    if not vma.vm_flags & (VM_WRITE if write else VM_READ):
        raise SegmentationFault(f"{'write' if write else 'read'} at {address:#x} not allowed by {vma!r}")
    current.machine.vmstat["pgfault"] += 1
    mm = vma.vm_mm
    index = pmd_index(address)
    entry = mm.pmds.get(index)
    if entry is None and thp_vma_allowable(vma, address):
        if do_huge_pmd_anonymous_page(vma, address, write):
            return
        entry = mm.pmds.get(index)
    if isinstance(entry, PmdHuge):
        if write and not entry.write:
            if do_huge_pmd_wp_page(vma, address, entry):
                return
        else:
            touch_pmd(entry, write)
            return
        entry = mm.pmds.get(index)
    if entry is None:
        entry = mm.pmds[index] = PteTable()
    pte = entry.ptes[pte_index(address)]
    if pte is None:
        do_anonymous_page(vma, address, entry, write)
    elif write and not pte.write:
        do_wp_page(vma, address, entry, pte)
    else:
        pte.young = True
        pte.dirty |= write


def alloc_anon_folio(vma, address: int, order: int):
    """A new zero-filled anon folio of ``order`` for the pages at ``address``, with its
    anon_vma, its rmap and its place on the LRU."""
    anon_vma_prepare(vma)
    folio = folio_alloc(order, PG_ANON_NEW)
    folio_add_new_anon_rmap(folio, vma, address & ~((PAGE_SIZE << order) - 1))
    folio_add_lru_vma(folio, vma)
    return folio


def do_anonymous_page(vma, address: int, table: PteTable, write: bool) -> None:
    """First touch of a page: a read maps the shared zero page, a write a new folio."""
    i = pte_index(address)
    if not write:
        table.ptes[i] = Pte(current.machine.zero_folio, 0, write=False)
        trace("do_anonymous_page", f"read fault at {address:#x}: map the zero page read-only")
        return
    folio = alloc_anon_folio(vma, address, 0)
    table.ptes[i] = Pte(folio, 0, write=True, dirty=True)
    vma.vm_mm.MM_ANONPAGES += 1
    trace("do_anonymous_page", f"write fault at {address:#x}: new small folio", folio)


def do_wp_page(vma, address: int, table: PteTable, pte: Pte) -> None:
    """Write to a read-only PTE: reuse the page if this mm owns it exclusively, else copy it."""
    folio = pte.folio
    exclusive = not is_zero_folio(folio) and folio.anon_exclusive[pte.page]
    if not exclusive and not is_zero_folio(folio) and wp_can_reuse_anon_folio(folio):
        exclusive = True
        folio.anon_exclusive[pte.page] = 1
    if exclusive:
        pte.write = pte.dirty = pte.young = True
        trace("do_wp_page", f"write to {address:#x}: page is exclusive to this mm, reuse it", folio)
        return
    wp_page_copy(vma, address, table, pte)


def wp_can_reuse_anon_folio(folio) -> bool:
    """May a write reuse this shared-looking folio in place? When every reference is a
    mapping and all of them are this mm's, nobody else can see the page. A small folio
    needs refcount 1. A large one was always copied until 6.15 (1da190f4d0a6); since then it
    is reused when no other mm maps it and its refcount equals its mapcount. Only the
    faulting PTE becomes writable; its neighbours fault (and are reused) one by one."""
    if not folio_test_large(folio):
        return folio._refcount == 1
    if kernel.reuse_large_anon_folio:
        return folio._refcount == folio_mapcount(folio) and not folio_maybe_mapped_shared(folio)
    return False


def wp_page_copy(vma, address: int, table: PteTable, old: Pte) -> None:
    """Copy-on-write: a new small folio with the old page's contents replaces the mapping."""
    new = alloc_anon_folio(vma, address, 0)
    new.data[0] = page_copy(old.folio.data[old.page])
    table.ptes[pte_index(address)] = Pte(new, 0, write=True, dirty=True)
    old_folio = old.folio
    if is_zero_folio(old_folio):
        vma.vm_mm.MM_ANONPAGES += 1
        trace("wp_page_copy", f"write to the zero page at {address:#x}: new small folio", new)
        return
    folio_remove_rmap_ptes(old_folio, old.page, 1, vma)
    folio_put(old_folio)
    trace("wp_page_copy", f"write to a shared page at {address:#x}: copied into a new small folio", new)


# ---------------------------------------------------------------- zap


def unmap_vma_range(vma, start: int, end: int) -> None:
    """zap_page_range_single(): remove every mapping in [start, end) of one VMA (munmap,
    MADV_DONTNEED, exit). A huge PMD only partly in the range is split first."""
    mm = vma.vm_mm
    addr = start
    while addr < end:
        index = pmd_index(addr)
        next_pmd = pmd_addr_end(addr, end)
        entry = mm.pmds.get(index)
        if isinstance(entry, PmdHuge):
            if next_pmd - addr == HPAGE_PMD_SIZE:
                zap_huge_pmd(vma, addr, entry)
                addr = next_pmd
                continue
            __split_huge_pmd(vma, addr)
            entry = mm.pmds.get(index)
        if entry is not None:
            zap_pte_range(vma, entry, addr, next_pmd)
            if entry.empty():
                del mm.pmds[index]
        addr = next_pmd


def zap_pte_range(vma, table: PteTable, start: int, end: int) -> None:
    """Clear the PTEs of [start, end) in one table, a run of one folio's pages at a time."""
    ptes = table.ptes
    i, last = pte_index(start), pte_index(end - 1)
    while i <= last:
        pte = ptes[i]
        if pte is None:
            i += 1
            continue
        folio, page = pte.folio, pte.page
        nr = folio_pte_batch(ptes, i, last - i + 1)
        # The PTEs' dirty bits go with them: only a file folio would need folio_mark_dirty()
        # (zap_present_folio_ptes() in mm/memory.c); an anon folio's data dies here.
        ptes[i:i + nr] = [None] * nr
        i += nr
        if is_zero_folio(folio):
            continue
        vma.vm_mm.MM_ANONPAGES -= nr
        folio_remove_rmap_ptes(folio, page, nr, vma)
        folio_put_refs(folio, nr)
    trace("zap_pte_range", f"cleared PTEs {start:#x}-{end:#x}")


def free_pgtables(mm) -> None:
    """exit: drop whatever page tables are left (deposited ones included)."""
    mm.pmds.clear()
    mm.deposited.clear()


# ---------------------------------------------------------------- fork


def copy_page_range(dst_vma, src_vma) -> None:
    """fork: share every mapped page with the child, write-protected on both sides (COW).
    A page that might be pinned by DMA (GUP pin on an exclusive page) is copied at once."""
    src_mm, dst_mm = src_vma.vm_mm, dst_vma.vm_mm
    for index in range(pmd_index(src_vma.vm_start), pmd_index(src_vma.vm_end - 1) + 1):
        entry = src_mm.pmds.get(index)
        if isinstance(entry, PmdHuge):
            if copy_huge_pmd(dst_vma, src_vma, index, entry):
                continue
            entry = src_mm.pmds.get(index)
        if entry is None:
            continue
        lo = max(src_vma.vm_start, index * HPAGE_PMD_SIZE)
        hi = min(src_vma.vm_end, (index + 1) * HPAGE_PMD_SIZE)
        dst = dst_mm.pmds.setdefault(index, PteTable())
        for i in range(pte_index(lo), pte_index(hi - 1) + 1):
            pte = entry.ptes[i]
            if pte is not None:
                dst.ptes[i] = copy_present_pte(dst_vma, src_vma, index * HPAGE_PMD_SIZE + i * PAGE_SIZE, pte)
        if dst.empty():
            del dst_mm.pmds[index]


def copy_present_pte(dst_vma, src_vma, address: int, pte: Pte) -> Pte:
    folio = pte.folio
    if is_zero_folio(folio):
        return Pte(folio, 0, write=False, young=False)
    if folio.anon_exclusive[pte.page] and folio_maybe_dma_pinned(folio):
        copy = alloc_anon_folio(dst_vma, address, 0)
        copy.data[0] = page_copy(folio.data[pte.page])
        dst_vma.vm_mm.MM_ANONPAGES += 1
        trace("copy_present_page", f"pinned page at {address:#x}: the child gets its own copy now", copy)
        return Pte(copy, 0, write=bool(dst_vma.vm_flags & VM_WRITE), dirty=True)
    folio.anon_exclusive[pte.page] = 0
    folio_add_anon_rmap_ptes(folio, pte.page, 1, dst_vma, exclusive=False)
    folio_get(folio)
    dst_vma.vm_mm.MM_ANONPAGES += 1
    pte.write = False
    return Pte(folio, pte.page, write=False, dirty=pte.dirty, young=False)


# ---------------------------------------------------------------- page contents



def read_byte(vma, address: int) -> int:
    """Load the byte at ``address``, faulting it in (read) if needed."""
    if not vma.vm_flags & VM_READ:
        raise SegmentationFault(f"read at {address:#x} not allowed by {vma!r}")
    entry = vma.vm_mm.pmds.get(pmd_index(address))
    if isinstance(entry, PmdHuge):
        entry.young = True
        return page_load(entry.folio, (address % HPAGE_PMD_SIZE) // PAGE_SIZE, address % PAGE_SIZE)
    pte = entry.ptes[pte_index(address)] if entry is not None else None
    if pte is None:
        handle_mm_fault(vma, address, write=False)
        return read_byte(vma, address)
    pte.young = True
    return page_load(pte.folio, pte.page, address % PAGE_SIZE)


def write_range(vma, start: int, end: int, value: int) -> None:
    """Store ``value`` in every byte of [start, end), faulting pages in as needed. A store
    sets the hardware dirty and accessed bits; no fault is taken for a present writable page."""
    mm = vma.vm_mm
    addr = start
    while addr < end:
        entry = mm.pmds.get(pmd_index(addr))
        if isinstance(entry, PmdHuge) and entry.write:
            hi = pmd_addr_end(addr, end)
            folio_store(entry.folio, addr % HPAGE_PMD_SIZE, hi - addr, value)
            entry.dirty = entry.young = True
            addr = hi
            continue
        pte = entry.ptes[pte_index(addr)] if isinstance(entry, PteTable) else None
        if pte is None or not pte.write:
            handle_mm_fault(vma, addr, write=True)
            continue
        hi = min(end, page_align_down(addr) + PAGE_SIZE)
        folio_store(pte.folio, pte.page * PAGE_SIZE + addr % PAGE_SIZE, hi - addr, value)
        pte.dirty = pte.young = True
        addr = hi


def check_access(mm, address: int):
    vma = mm.find_vma(address)
    if vma is None:
        raise SegmentationFault(f"no mapping at {address:#x}")
    return vma

