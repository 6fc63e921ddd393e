"""Transparent huge pages (~ mm/huge_memory.c): the THP fault, the huge zero page, PMD
splits, MADV_FREE on a huge PMD, the PMD-level lazyfree discard the series added, folio
splits and the deferred split queue (deferred_split_folio itself is in mmlab.include.huge_mm).

Two different splits, often confused: splitting the *PMD* (the THP stays one folio, now
mapped by 512 PTEs; counted in thp_split_pmd) and splitting the *folio* (it becomes 512
small folios; counted in thp_split_page).
"""

from __future__ import annotations

from ..include.highmem import page_is_zero
from ..include.huge_mm import deferred_split_folio
from ..include.internal import folio_unqueue_deferred_split, mlock_vma_folio
from ..include.mm import (
    PG_ANON_NEW,
    VM_LOCKED,
    VM_WRITE,
    folio_get,
    folio_mapcount,
    folio_maybe_dma_pinned,
    folio_ref_count,
    is_zero_folio,
)
from ..include.mm_inline import lruvec_add_folio
from ..include.mm_types import Folio
from ..include.page_flags import (
    PG,
    folio_clear_dirty,
    folio_clear_partially_mapped,
    folio_set_dirty,
    folio_set_swapbacked,
    folio_test_anon,
    folio_test_dirty,
    folio_test_lru,
    folio_test_swapbacked,
)
from ..include.pgtable import PmdHuge, Pte, PteTable, pmd_align_down, pmd_index, pte_index
from ..include.rmap import (
    anon_vma_prepare,
    folio_add_anon_rmap_pmd,
    folio_add_anon_rmap_ptes,
    folio_add_new_anon_rmap,
    folio_remove_rmap_pmd,
    folio_remove_rmap_ptes,
    rmap_walk,
)
from ..state import count_vm_event, current, kernel, trace
from ..uapi import HPAGE_PMD_NR, HPAGE_PMD_ORDER, HPAGE_PMD_SIZE
from .page_alloc import folio_alloc
from .page_vma_mapped import PageVmaMappedWalk, page_vma_mapped_walk, page_vma_mapped_walk_done
from .swap import __folio_put, folio_add_lru_vma, folio_mark_lazyfree, folio_put

# The flags a tail page inherits when a folio is split (__split_huge_page_tail).
SPLIT_INHERITED_FLAGS = (PG.referenced | PG.uptodate | PG.dirty | PG.active | PG.workingset | PG.swapbacked
                         | PG.unevictable | PG.mlocked | PG.anon)


def get_huge_zero_folio() -> Folio:
    machine = current.machine
    if machine.huge_zero_folio is None:
        machine.huge_zero_folio = Folio(pfn=-HPAGE_PMD_NR, order=HPAGE_PMD_ORDER, flags=PG.zero | PG.uptodate)
        count_vm_event("thp_zero_page_alloc")
    return machine.huge_zero_folio


def vma_alloc_anon_folio_pmd(vma, haddr: int) -> Folio:
    """A new zero-filled THP for the 2 MiB at ``haddr``, with its anon_vma, its rmap and
    its place on the LRU (the fault path's allocation, anon_vma_prepare() included)."""
    anon_vma_prepare(vma)
    folio = folio_alloc(HPAGE_PMD_ORDER, PG_ANON_NEW)
    folio_add_new_anon_rmap(folio, vma, haddr)
    folio_add_lru_vma(folio, vma)
    return folio


def pgtable_trans_huge_deposit(mm, index: int) -> None:
    """Set aside a PTE table for this PMD now, so a later split never has to allocate one."""
    mm.deposited[index] = PteTable()


def do_huge_pmd_anonymous_page(vma, address: int, write: bool) -> bool:
    """First touch of a THP-eligible 2 MiB range: a read maps the huge zero page, a write
    a new PMD-mapped THP. Both deposit a page table."""
    mm = vma.vm_mm
    index = pmd_index(address)
    pgtable_trans_huge_deposit(mm, index)
    if not write and current.machine.use_zero_page:
        mm.pmds[index] = PmdHuge(get_huge_zero_folio(), write=False)
        trace("do_huge_pmd_anonymous_page", f"read fault at {address:#x}: map the huge zero page")
        return True
    folio = vma_alloc_anon_folio_pmd(vma, pmd_align_down(address))
    mm.pmds[index] = PmdHuge(folio, write=bool(vma.vm_flags & VM_WRITE), dirty=True)
    mm.MM_ANONPAGES += HPAGE_PMD_NR
    count_vm_event("thp_fault_alloc")
    trace("do_huge_pmd_anonymous_page", f"write fault at {address:#x}: new THP mapped by one PMD", folio)
    return True


def touch_pmd(entry: PmdHuge, write: bool) -> None:
    """An access through a huge PMD (or FOLL_TOUCH): set accessed, and dirty for a write."""
    entry.young = True
    entry.dirty |= write


def do_huge_pmd_wp_page(vma, address: int, entry: PmdHuge) -> bool:
    """Write to a read-only huge PMD. Reuse the THP if this mm owns it; otherwise split the
    PMD and let the PTE fault copy just the one 4 KiB page (no THP is copied on COW).
    Returns False when the fault must continue at PTE level."""
    folio = entry.folio
    if is_zero_folio(folio):
        if kernel.thp_on_huge_zero_wp:
            return do_huge_zero_wp_pmd(vma, address)
    else:
        if not folio.anon_exclusive[0] and folio_ref_count(folio) == 1:
            folio.anon_exclusive[:] = b"\x01" * folio.nr_pages
        if folio.anon_exclusive[0]:
            entry.write = entry.dirty = entry.young = True
            trace("do_huge_pmd_wp_page", "THP exclusive to this mm: reuse it", folio)
            return True
    trace("do_huge_pmd_wp_page", "shared THP or huge zero page: split the PMD, fall back to a PTE fault", folio)
    __split_huge_pmd(vma, address)
    return False


def do_huge_zero_wp_pmd(vma, address: int) -> bool:
    """Write to the huge zero page: replace it by a new zero-filled THP (keeping the table
    deposited for the zero PMD), instead of splitting it into 512 zero-page PTEs."""
    mm = vma.vm_mm
    folio = vma_alloc_anon_folio_pmd(vma, pmd_align_down(address))
    count_vm_event("thp_fault_alloc")
    mm.pmds[pmd_index(address)] = PmdHuge(folio, write=True, dirty=True)
    mm.MM_ANONPAGES += HPAGE_PMD_NR
    trace("do_huge_zero_wp_pmd", "write to the huge zero page: a new THP takes its place", folio)
    return True


def __split_huge_pmd(vma, address: int) -> None:
    """Split the huge PMD covering ``address``, if there is one (takes the PMD lock itself)."""
    index = pmd_index(address)
    entry = vma.vm_mm.pmds.get(index)
    if isinstance(entry, PmdHuge):
        __split_huge_pmd_locked(vma, index * HPAGE_PMD_SIZE, entry)


def split_huge_pmd_address(vma, address: int, folio=None) -> None:
    """6.10's try_to_unmap_one calls this before its walk: split the PMD mapping ``folio``."""
    entry = vma.vm_mm.pmds.get(pmd_index(address))
    if isinstance(entry, PmdHuge) and (folio is None or entry.folio is folio):
        __split_huge_pmd_locked(vma, pmd_align_down(address), entry)


def split_huge_pmd_locked(vma, address: int, entry, folio) -> None:
    """Added by the series (29e847d2ade3): split a PMD whose lock the caller already holds,
    after checking it still maps ``folio``."""
    if isinstance(entry, PmdHuge) and entry.folio is folio:
        __split_huge_pmd_locked(vma, pmd_align_down(address), entry)


def vma_adjust_trans_huge(vma, addr: int) -> None:
    """A VMA is about to be cut at ``addr``: a huge PMD across the cut must become PTEs."""
    if addr % HPAGE_PMD_SIZE and vma.vm_start <= addr < vma.vm_end:
        __split_huge_pmd(vma, addr)


def __split_huge_pmd_locked(vma, haddr: int, entry: PmdHuge) -> None:
    """Replace a huge PMD by the deposited PTE table, filled with 512 PTEs that map the same
    pages with the same permission, dirty and accessed bits. The folio stays one THP; it
    gains 511 references and 512 PTE mappings, then loses its PMD mapping."""
    count_vm_event("thp_split_pmd")
    mm = vma.vm_mm
    index = pmd_index(haddr)
    table = mm.deposited.pop(index)
    folio = entry.folio
    if is_zero_folio(folio):
        zero = current.machine.zero_folio
        table.ptes = [Pte(zero, 0, write=False, young=entry.young) for _ in range(HPAGE_PMD_NR)]
        mm.pmds[index] = table
        trace("__split_huge_pmd_locked", "huge zero PMD replaced by 512 PTEs of the small zero page")
        return
    if entry.dirty:
        folio_set_dirty(folio)
    folio._refcount += HPAGE_PMD_NR - 1
    folio_add_anon_rmap_ptes(folio, 0, HPAGE_PMD_NR, vma, exclusive=bool(folio.anon_exclusive[0]))
    write, dirty, young = entry.write, entry.dirty, entry.young
    table.ptes = [Pte(folio, i, write, dirty, young) for i in range(HPAGE_PMD_NR)]
    mm.pmds[index] = table
    folio_remove_rmap_pmd(folio, vma)
    trace("__split_huge_pmd_locked", "PMD split: the THP is now mapped by 512 PTEs", folio)


def zap_huge_pmd(vma, address: int, entry: PmdHuge) -> None:
    """munmap/MADV_DONTNEED of a whole huge PMD: clear it and free the deposited table."""
    mm = vma.vm_mm
    index = pmd_index(address)
    del mm.pmds[index]
    mm.deposited.pop(index, None)
    folio = entry.folio
    if is_zero_folio(folio):
        return
    mm.MM_ANONPAGES -= HPAGE_PMD_NR
    folio_remove_rmap_pmd(folio, vma)
    folio_put(folio)
    trace("zap_huge_pmd", f"cleared the huge PMD at {address:#x}", folio)


def copy_huge_pmd(dst_vma, src_vma, index: int, entry: PmdHuge) -> bool:
    """fork: share a huge PMD with the child, write-protected in both. A THP that may be
    pinned cannot be shared: its PMD is split and the PTE copy handles it (False)."""
    folio = entry.folio
    dst_mm = dst_vma.vm_mm
    if not is_zero_folio(folio):
        if folio.anon_exclusive[0] and folio_maybe_dma_pinned(folio):
            __split_huge_pmd(src_vma, index * HPAGE_PMD_SIZE)
            return False
        folio.anon_exclusive[:] = bytes(folio.nr_pages)
        folio_add_anon_rmap_pmd(folio, dst_vma, exclusive=False)
        folio_get(folio)
        dst_mm.MM_ANONPAGES += HPAGE_PMD_NR
        entry.write = False
    pgtable_trans_huge_deposit(dst_mm, index)
    dst_mm.pmds[index] = PmdHuge(folio, write=False, dirty=entry.dirty, young=False)
    return True


def change_huge_pmd(vma, entry: PmdHuge) -> None:
    """mprotect of a whole huge PMD: it stays huge, writable again only if the VMA allows
    writing and this mm owns the THP exclusively (the zero page never)."""
    folio = entry.folio
    entry.write = bool(vma.vm_flags & VM_WRITE) and not is_zero_folio(folio) and bool(folio.anon_exclusive[0])


def folio_maybe_mapped_shared(folio) -> bool:
    """Might another process map this folio? The model knows exactly: it asks the rmap.
    The kernel estimates. 6.10-6.14 guessed from mapcounts (folio_likely_mapped_shared());
    6.15 tracks the mms that map a large folio, but may still answer "shared" for one that
    more than two mms mapped at some point. Both err only towards "shared", so the model
    may skip fewer folios than the kernel, never more."""
    if folio_mapcount(folio) <= 1:
        return False
    mms = set()

    def note(folio, vma, address, arg):
        pvmw = PageVmaMappedWalk(folio, vma, address)
        if page_vma_mapped_walk(pvmw):
            mms.add(vma.vm_mm.id)
            page_vma_mapped_walk_done(pvmw)
        return True

    rmap_walk(folio, note)
    return len(mms) > 1


def madvise_free_huge_pmd(vma, addr: int, next_addr: int) -> bool:
    """MADV_FREE on a huge PMD. The whole 2 MiB: clear the folio's PG_dirty and the PMD's
    dirty and accessed bits (the PMD stays writable) and mark the folio lazyfree. Part of
    it: split the folio and let the PTE loop handle the pieces (returns False)."""
    entry = vma.vm_mm.pmds.get(pmd_index(addr))
    if not isinstance(entry, PmdHuge) or is_zero_folio(entry.folio):
        return False
    folio = entry.folio
    if folio_maybe_mapped_shared(folio):
        trace("madvise_free_huge_pmd", "THP may be mapped by another process: skipped", folio)
        return True
    if next_addr - addr != HPAGE_PMD_SIZE:
        trace("madvise_free_huge_pmd", "range covers part of the THP: split the folio", folio)
        try_split_folio(folio)
        return False
    if folio_test_dirty(folio):
        folio_clear_dirty(folio)
    entry.young = entry.dirty = False
    folio_mark_lazyfree(folio)
    return True


def unmap_huge_pmd_locked(vma, addr: int, entry, folio) -> bool:
    """Added by 735ecdfaf4e8: try to discard a lazyfree THP at PMD level, without splitting."""
    if folio_test_anon(folio) and not folio_test_swapbacked(folio):
        return __discard_anon_folio_pmd_locked(vma, addr, entry, folio)
    return False


def __discard_anon_folio_pmd_locked(vma, addr: int, entry: PmdHuge, folio) -> bool:
    """Free a clean lazyfree THP by clearing its PMD, if nothing else holds a reference:
    refcount must be exactly the mapping(s) plus the reclaim isolation (mapcount + 1)."""
    mm = vma.vm_mm
    index = pmd_index(addr)
    if kernel.pmd_lazyfree_no_split:
        # 6.15: a dirty PMD makes the folio dirty; a dirty folio becomes swap-backed again.
        if entry.dirty:
            folio_set_dirty(folio)
        if folio_test_dirty(folio):
            folio_set_swapbacked(folio)
            trace("__discard_anon_folio_pmd_locked", "redirtied lazyfree THP: set PG_swapbacked, keep it", folio)
            return False
    else:
        if folio_test_dirty(folio) or entry.dirty:
            trace("__discard_anon_folio_pmd_locked", "dirty lazyfree THP: not discarded here", folio)
            return False
    del mm.pmds[index]  # pmdp_huge_clear_flush()
    ref_count, map_count = folio_ref_count(folio), folio_mapcount(folio)
    if folio_test_dirty(folio) or entry.dirty or ref_count != map_count + 1:
        mm.pmds[index] = entry
        trace("__discard_anon_folio_pmd_locked", f"refcount {ref_count} != mapcount {map_count} + 1: "
              "someone else holds the THP; PMD restored", folio)
        return False
    folio_remove_rmap_pmd(folio, vma)
    mm.deposited.pop(index, None)  # zap_deposited_table()
    mm.MM_ANONPAGES -= HPAGE_PMD_NR
    folio_put(folio)
    trace("__discard_anon_folio_pmd_locked", "clean lazyfree THP discarded at PMD level, no split", folio)
    return True


# ---------------------------------------------------------------- folio split


def split_folio(folio, folio_list: list | None = None) -> bool:
    """split_huge_page_to_list_to_order(..., 0): turn a THP into 512 small folios.

    The caller holds one reference. The split goes ahead only if no one else holds one
    (refcount == mapcount + 1, can_split_folio(), checked before anything is touched); then
    every PMD mapping is split (as the kernel's unmap_folio does). Each page keeps its
    mappings; pages no one maps are freed.
    With ``folio_list`` (reclaim's isolated list) the new folios join that list, else the
    head's LRU list. Returns True on success.
    """
    if folio.order == 0:
        return True
    if folio_ref_count(folio) != folio_mapcount(folio) + 1:
        count_vm_event("thp_split_page_failed")
        trace("split_folio", "extra references (a pin?): cannot split", folio)
        return False
    if folio._nr_pages_mapped and folio_mapcount(folio) > 1:
        # unmap_folio() replaces PTEs by migration entries one at a time: after the first,
        # the folio is partly mapped and lands on the deferred split queue on its way.
        deferred_split_folio(folio, partially_mapped=True)
    rmap_walk(folio, lambda f, vma, address, arg: split_huge_pmd_address(vma, address, f) or True)
    mappings = _pte_mappings(folio)
    folio_unqueue_deferred_split(folio)
    nr = folio.nr_pages
    inherited = folio.flags & SPLIT_INHERITED_FLAGS
    pieces = [folio]
    for i in range(1, nr):
        tail = Folio(pfn=folio.pfn + i, order=0, flags=inherited, _refcount=folio._mapcount[i] + 1,
                     anon_vma=folio.anon_vma, index=folio.index + i, mlock_count=0,
                     _mapcount=[folio._mapcount[i]], data=folio.data[i:i + 1],
                     anon_exclusive=bytearray(folio.anon_exclusive[i:i + 1]))
        current.machine.folios[tail.pfn] = tail
        pieces.append(tail)
    head_refs = folio._refcount - folio_mapcount(folio) + folio._mapcount[0] + 1
    folio.order = 0
    folio._refcount = head_refs
    folio._mapcount = folio._mapcount[:1]
    folio._large_mapcount = folio._entire_mapcount = -1
    folio._nr_pages_mapped = 0
    folio_clear_partially_mapped(folio)
    folio.data = folio.data[:1]
    folio.anon_exclusive = folio.anon_exclusive[:1]
    for table, slot, page, _ in mappings:
        table.ptes[slot].folio, table.ptes[slot].page = pieces[page], 0
    if kernel.split_remaps_zero_subpages:
        if folio_test_anon(folio):
            remap_zero_subpages(pieces, mappings)
    if nr >= HPAGE_PMD_NR:
        count_vm_event("thp_split_page")
    _place_split_tails(folio, pieces[1:], folio_list)
    for _, _, page, vma in mappings:
        # remap_page(): each small folio's mapping is added back; a small folio mapped in a
        # VM_LOCKED VMA is mlocked then (folio_add_anon_rmap_pte -> mlock_vma_folio).
        mlock_vma_folio(pieces[page], vma)
    trace("split_folio", f"THP split into {nr} small folios", folio)
    return True


def remap_zero_subpages(pieces: list, mappings: list) -> None:
    """After a split (b1f202060afe, 6.12): a small folio holding only zeros is not mapped
    again; its PTEs get the shared zero page instead, and the folio is freed once the split
    drops its references. Not in a VM_LOCKED VMA, nor for an mlocked folio (the kernel does
    this while restoring the PTEs the split replaced by migration entries:
    try_to_map_unused_to_zeropage() in mm/migrate.c). A split of the PMD alone keeps the THP
    whole, so partial munmap, mprotect and MADV_DONTNEED never get here."""
    zero = current.machine.zero_folio
    remapped = 0
    for table, slot, page, vma in mappings:
        small = pieces[page]
        if small.flags & PG.mlocked or vma.vm_flags & VM_LOCKED or not page_is_zero(small.data[0]):
            continue
        table.ptes[slot] = Pte(zero, 0, write=False)
        vma.vm_mm.MM_ANONPAGES -= 1
        folio_remove_rmap_ptes(small, 0, 1, vma)
        small._refcount -= 1  # the mapping's reference; freed with the split's, if it was the last
        remapped += 1
    if remapped:
        trace("remap_zero_subpages", "{remapped} zero-filled page(s) of the split THP now map the shared zero page",
              None, remapped)


def try_split_folio(folio) -> bool:
    """Split a folio the caller found mapped, holding a reference for the split (the
    madvise paths' folio_get + split_folio + folio_put)."""
    folio_get(folio)
    split = split_folio(folio)
    folio_put(folio)
    return split


def _pte_mappings(folio) -> list[tuple[PteTable, int, int, object]]:
    """Every (table, slot, page, vma) where a PTE maps a page of ``folio``."""
    found = []

    def collect(folio, vma, address, arg):
        pvmw = PageVmaMappedWalk(folio, vma, address)
        while page_vma_mapped_walk(pvmw):
            found.append((pvmw.pmd, pte_index(pvmw.address), pvmw.pte.page, vma))
        return True

    rmap_walk(folio, collect)
    return found


def _place_split_tails(head, tails: list, folio_list: list | None) -> None:
    """lru_add_split_folio(): tails go where the head is; unmapped tails are freed."""
    for tail in tails:
        if folio_list is not None:
            tail._refcount += 1
            folio_list.append(tail)
        elif tail._refcount == 0:
            __folio_put(tail)
        elif folio_test_lru(head):
            lruvec_add_folio(tail)
