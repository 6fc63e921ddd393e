"""Reverse mapping's users (~ mm/rmap.c): try_to_unmap() and folio_referenced(), each a
walk over the VMAs that may map a folio (the anon_vma chains, map counts and the walk
itself are in mmlab.include.rmap).
"""

from __future__ import annotations

from ..include.internal import folio_pte_batch, mlock_vma_folio, vma_address
from ..include.mm import VM_LOCKED, ModelBug, folio_mapcount, folio_ref_count
from ..include.page_flags import (
    folio_set_dirty,
    folio_set_swapbacked,
    folio_test_anon,
    folio_test_dirty,
    folio_test_large,
    folio_test_lazyfree,
    folio_test_swapbacked,
)
from ..include.pgtable import get_and_clear_ptes, pte_index
from ..include.rmap import (
    TTU_IGNORE_MLOCK,
    TTU_SPLIT_HUGE_PMD,
    TTU_SYNC,
    folio_remove_rmap_ptes,
    rmap_walk,
    ttu_flags_str,
)
from ..state import kernel, trace
from ..uapi import HPAGE_PMD_SIZE, PAGE_SIZE
from .huge_memory import split_huge_pmd_address, split_huge_pmd_locked, unmap_huge_pmd_locked
from .page_vma_mapped import (
    PVMW_PGTABLE_CROSSED,
    PVMW_SYNC,
    PageVmaMappedWalk,
    page_vma_mapped_walk,
    page_vma_mapped_walk_done,
    page_vma_mapped_walk_restart,
)
from .swap import folio_put_refs

# ---------------------------------------------------------------- try_to_unmap


def try_to_unmap(folio, flags: int) -> None:
    """Unmap a folio from every page table that maps it (reclaim's step before freeing)."""
    trace("try_to_unmap", f"flags {ttu_flags_str(flags)}", folio)
    rmap_walk(folio, try_to_unmap_one, flags, done=lambda f: folio_mapcount(f) == 0)


def can_batch_unmap_folio_ptes(folio, pvmw) -> bool:
    """6.15.0 (354dffd29575): can the PTE at pvmw.pte and the ones after it clear this whole
    lazyfree folio in one go? Only if it maps the folio's first page and every page follows
    in order. Nothing caps the look-ahead at the VMA's end or the page table's end; the
    kernel could read past the table (fixed by ddd05742b45b), the model stops there."""
    if not (folio_test_large(folio) and folio_test_lazyfree(folio)) or pvmw.pte.page != 0:
        return False
    first, nr = pte_index(pvmw.address), folio.nr_pages
    return first + nr <= len(pvmw.pmd.ptes) and folio_pte_batch(pvmw.pmd.ptes, first, nr) == nr


def folio_unmap_pte_batch(folio, pvmw, flags: int) -> int:
    """How many PTEs, starting at pvmw.pte, map consecutive pages of this lazyfree folio and
    can be cleared together: any part of it, capped at the VMA's end and the page table's
    end ("mm/rmap: fix potential out-of-bounds page table access during batched unmap",
    ddd05742b45b, 6.16 and 6.15.7).

    The batch also ends where the write bit changes: that is Dev Jain's 2026 fix
    29f40594a281 ("mm/rmap: fix incorrect pte restoration for lazyfree folios"), which the
    model applies in every profile that has this helper. Simplification: before that fix
    the kernel batched across a write-bit change and, when the discard failed, restored all
    the PTEs with the first one's write bit; the model restores each PTE as it was.
    """
    if not (folio_test_large(folio) and folio_test_lazyfree(folio)):
        return 1
    first = pte_index(pvmw.address)
    max_nr = min(len(pvmw.pmd.ptes) - first, (pvmw.end - pvmw.address) // PAGE_SIZE, folio.nr_pages - pvmw.pte.page)
    return folio_pte_batch(pvmw.pmd.ptes, first, max_nr, respect_write=True)


def try_to_unmap_one(folio, vma, address: int, flags: int) -> bool:
    """Unmap ``folio`` from one VMA; False stops the rmap walk (the folio must stay mapped).

    The heart of the course: where the PMD of a THP is split (before the walk in 6.10,
    inside it since 6.11), what happens in a VM_LOCKED VMA, and when a clean lazyfree
    folio is discarded instead of unmapped for swap. Simplifications: no swap device (a
    swap-backed anon folio is never unmapped here), no hugetlb, no device-private entries,
    TLB flushes are traced but not modelled.
    """
    mm = vma.vm_mm
    pvmw = PageVmaMappedWalk(folio, vma, address, PVMW_SYNC if flags & TTU_SYNC else 0)
    ret = True
    ptes = 0

    if kernel.split_pmd_before_walk:
        # 6.10: PTE-map the THP first, so the walk below only ever meets PTEs.
        if flags & TTU_SPLIT_HUGE_PMD:
            split_huge_pmd_address(vma, address, folio)

    while page_vma_mapped_walk(pvmw):
        if kernel.split_pmd_before_walk:
            if pvmw.pte is None:
                raise ModelBug("VM_BUG_ON_FOLIO: unexpected PMD-mapped THP")

        # A VM_LOCKED VMA keeps what it maps in memory: nothing is unmapped from one.
        if not flags & TTU_IGNORE_MLOCK and vma.vm_flags & VM_LOCKED:
            if kernel.mlock_large_in_ttu:
                # 6.18: count the folio's PTEs; mlock it only once all are seen under one lock.
                ptes += 1
                ret = False
                if pvmw.pte is not None and ptes != pvmw.nr_pages:
                    continue
                if pvmw.flags & PVMW_PGTABLE_CROSSED:
                    trace("try_to_unmap_one", "VM_LOCKED, but the PTEs span two page tables: no mlock", folio)
                    break
                mlock_vma_folio(folio, vma)
                trace("try_to_unmap_one", "VM_LOCKED: restored the mlock that was missed; stop", folio)
                break
            else:
                if kernel.v6_mlock_restore_pmd:
                    restore = not folio_test_large(folio) or (pvmw.pte is None and flags & TTU_SPLIT_HUGE_PMD)
                else:
                    restore = not folio_test_large(folio)
                if restore:
                    mlock_vma_folio(folio, vma)
                trace("try_to_unmap_one",
                      "VM_LOCKED: " + ("restored the mlock that was missed; " if restore else "")
                      + "abort the walk, the folio stays mapped", folio)
                ret = False
                break

        if not kernel.split_pmd_before_walk:
            # 6.11: the walk may now yield the PMD itself; split it here (or discard it).
            if pvmw.pte is None:
                if kernel.pmd_lazyfree_discard:
                    if kernel.pmd_lazyfree_no_split:
                        if folio_test_lazyfree(folio):
                            if unmap_huge_pmd_locked(vma, pvmw.address, pvmw.pmd, folio):
                                break
                            trace("try_to_unmap_one", "lazyfree THP kept: abort without splitting the PMD", folio)
                            ret = False
                            break
                    else:
                        if unmap_huge_pmd_locked(vma, pvmw.address, pvmw.pmd, folio):
                            break
                if flags & TTU_SPLIT_HUGE_PMD:
                    split_huge_pmd_locked(vma, pvmw.address, pvmw.pmd, folio)
                    flags &= ~TTU_SPLIT_HUGE_PMD
                    page_vma_mapped_walk_restart(pvmw)
                    trace("try_to_unmap_one", "split the PMD under the lock the walk holds; restart the walk "
                          "to see the PTEs", folio)
                    continue
            if pvmw.pte is None:
                raise ModelBug("VM_BUG_ON_FOLIO: PMD-mapped folio neither discarded nor split")

        if kernel.batched_lazyfree_unmap:
            if kernel.pte_batch_partial:
                nr_pages = folio_unmap_pte_batch(folio, pvmw, flags)
            else:
                nr_pages = folio.nr_pages if can_batch_unmap_folio_ptes(folio, pvmw) else 1
        else:
            nr_pages = 1
        table, first = pvmw.pmd.ptes, pte_index(pvmw.address)
        cleared, dirty = get_and_clear_ptes(table, first, nr_pages)
        if dirty:
            folio_set_dirty(folio)
        page = pvmw.pte.page

        if folio_test_anon(folio):
            if not folio_test_swapbacked(folio):
                ref_count, map_count = folio_ref_count(folio), folio_mapcount(folio)
                if ref_count == 1 + map_count and not folio_test_dirty(folio):
                    mm.MM_ANONPAGES -= nr_pages
                    trace("try_to_unmap_one", "clean lazyfree folio, refcount {ref_count} = 1 + mapcount "
                          "{map_count}: discard {nr_pages} PTE(s)", folio, ref_count, map_count, nr_pages)
                else:
                    table[first:first + nr_pages] = cleared
                    reason = "dirty" if folio_test_dirty(folio) else f"refcount {ref_count} != 1 + mapcount {map_count}"
                    if kernel.swapbacked_only_if_dirty:
                        if folio_test_dirty(folio):
                            folio_set_swapbacked(folio)
                    else:
                        folio_set_swapbacked(folio)
                    trace("try_to_unmap_one", f"lazyfree folio {reason}: restore the PTE(s)"
                          + (", set PG_swapbacked" if folio_test_swapbacked(folio) else "") + "; abort", folio)
                    ret = False
                    break
            else:
                table[first:first + nr_pages] = cleared
                trace("try_to_unmap_one", "swap-backed anon folio but no swap space: restore the PTE; abort", folio)
                ret = False
                break

        folio_remove_rmap_ptes(folio, page, nr_pages, vma)
        folio_put_refs(folio, nr_pages)
        if nr_pages == folio.nr_pages:
            break

    page_vma_mapped_walk_done(pvmw)
    return ret


# ---------------------------------------------------------------- folio_referenced


class _ReferencedArg:
    __slots__ = ("mapcount", "referenced", "vm_flags")

    def __init__(self, mapcount: int):
        self.mapcount = mapcount
        self.referenced = 0
        self.vm_flags = 0


def folio_referenced_one(folio, vma, address: int, pra: _ReferencedArg) -> bool:
    """Test and clear the accessed bits of the folio's mappings in one VMA. A folio found in
    a VM_LOCKED VMA is mlocked here when it can be ("restore the mlock which got missed"):
    a small folio, a PMD-mapped THP, or a large folio fully PTE-mapped in one page table
    (the rule since "mm: support large folio for mlock", merged 6.7)."""
    pvmw = PageVmaMappedWalk(folio, vma, address)
    ptes = referenced = 0
    while page_vma_mapped_walk(pvmw):
        if vma.vm_flags & VM_LOCKED:
            if not folio_test_large(folio) or pvmw.pte is None:
                mlock_vma_folio(folio, vma)
                page_vma_mapped_walk_done(pvmw)
                pra.vm_flags |= VM_LOCKED
                trace("folio_referenced_one", "VM_LOCKED: restored the mlock that was missed", folio)
                return False
            ptes += 1
            pra.mapcount -= 1
            continue
        entry = pvmw.pte if pvmw.pte is not None else pvmw.pmd
        if entry.young:
            entry.young = False
            referenced += 1
        pra.mapcount -= 1
    if vma.vm_flags & VM_LOCKED and folio_test_large(folio):
        start = vma_address(vma, folio.index)
        within = vma.vm_start <= start and start + folio.nr_pages * PAGE_SIZE <= vma.vm_end
        one_table = start // HPAGE_PMD_SIZE == (start + folio.nr_pages * PAGE_SIZE - 1) // HPAGE_PMD_SIZE
        if within and one_table and ptes == folio.nr_pages:
            mlock_vma_folio(folio, vma)
            pra.vm_flags |= VM_LOCKED
            trace("folio_referenced_one", "VM_LOCKED, fully PTE-mapped in one table: mlocked", folio)
            return False
    if referenced:
        pra.referenced += 1
        pra.vm_flags |= vma.vm_flags & ~VM_LOCKED
    return pra.mapcount > 0


def folio_referenced(folio) -> tuple[int, int]:
    """How many VMAs map the folio with the accessed bit set (clearing the bits), and the
    union of their vm_flags (VM_LOCKED if one of them was locked)."""
    pra = _ReferencedArg(folio_mapcount(folio))
    if not pra.mapcount:
        return 0, 0
    rmap_walk(folio, folio_referenced_one, pra)
    return pra.referenced, pra.vm_flags

