"""The structures of include/linux/mm_types.h and rmap.h that the model needs: struct folio,
vm_area_struct, mm_struct, anon_vma and anon_vma_chain; and the snapshot of a folio a
trace event keeps.

Fields keep the kernel's names and conventions (see mmlab.include.mm for the map counts).
Simplification: the per-CPU LRU and mlock batches are not modelled, so a folio reaches its
LRU list at once (the kernel does this immediately for large folios only).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from .mm import folio_entire_mapcount, folio_mapcount, vma_flags_str
from .page_flags import flag_names


@dataclass(eq=False)
class Folio:
    """struct folio: one or more physically contiguous pages managed as a unit.

    ``data`` holds each page's contents: an int when every byte of the page holds that value
    (a page never written, or filled whole: the common case, kept cheap), else a bytearray
    of PAGE_SIZE bytes (see mmlab.include.highmem).
    """

    pfn: int
    order: int
    flags: int = 0
    _refcount: int = 1
    _large_mapcount: int = -1
    _entire_mapcount: int = -1
    _nr_pages_mapped: int = 0  # pages mapped by at least one PTE
    _pincount: int = 0
    mlock_count: int = 0
    lru: str | None = None  # name of the LRU list it is on; PG_lru says the same
    anon_vma: AnonVma | None = None
    index: int = 0  # page offset of the first page in its anon_vma's address space
    deferred_split: bool = False  # on the deferred split queue
    _mapcount: list[int] = field(default_factory=list)  # per page, -1 = unmapped
    data: list = field(default_factory=list)  # per page: int (every byte) or bytearray(PAGE_SIZE)
    anon_exclusive: bytearray = field(default_factory=bytearray)  # PageAnonExclusive, per page

    def __post_init__(self):
        n = 1 << self.order
        if not self._mapcount:
            self._mapcount = [-1] * n
        if not self.data:
            self.data = [0] * n
        if not self.anon_exclusive:
            self.anon_exclusive = bytearray(n)

    @property
    def nr_pages(self) -> int:
        return 1 << self.order

    def snapshot(self) -> FolioSnapshot:
        """Its counts and flags now: what a trace event shows and a step diagram compares."""
        return FolioSnapshot(self.snapshot_values())

    def snapshot_values(self) -> tuple:
        """snapshot()'s values as a plain tuple of numbers and strings: what a trace record
        keeps, up to one per PTE reclaimed (see mmlab.state.Trace for why plain)."""
        return (self.pfn, self.order, self._refcount, folio_mapcount(self), folio_entire_mapcount(self),
                self.flags, self.lru)

    def __repr__(self):
        kind = f"THP order {self.order}" if self.order else "small"
        return (
            f"<folio pfn={self.pfn:#x} {kind} ref={self._refcount} map={folio_mapcount(self)} "
            f"{'|'.join(flag_names(self.flags))}>"
        )


class FolioSnapshot(tuple):
    """A folio's counts and flags at one moment, read as a mapping with the keys ``pfn``,
    ``order``, ``refcount``, ``mapcount``, ``entire_mapcount``, ``flags`` (names) and ``lru``.

    It is a tuple underneath, made without running Python code, so that a trace may take
    one per PTE; the flag names are made only when read."""

    __slots__ = ()
    KEYS = ("pfn", "order", "refcount", "mapcount", "entire_mapcount", "flags", "lru")
    _FLAGS = KEYS.index("flags")

    def __getitem__(self, key: str):
        try:
            i = self.KEYS.index(key)
        except ValueError:
            raise KeyError(key) from None
        value = tuple.__getitem__(self, i)
        return flag_names(value) if i == self._FLAGS else value

    def get(self, key: str, default=None):
        return self[key] if key in self.KEYS else default

    def keys(self):
        return self.KEYS

    def values(self):
        return [self[k] for k in self.KEYS]

    def items(self):
        return [(k, self[k]) for k in self.KEYS]

    def __iter__(self):
        return iter(self.KEYS)

    def __contains__(self, key) -> bool:
        return key in self.KEYS

    def __repr__(self):
        return repr(dict(self.items()))


Mapping.register(FolioSnapshot)


@dataclass(eq=False)
class AnonVma:
    """struct anon_vma: the root of reverse mapping for anonymous folios. A folio points at
    one anon_vma; every VMA that might map it is reachable from there through the chains."""

    id: int
    root: AnonVma | None = None
    parent: AnonVma | None = None
    rb_root: list[AnonVmaChain] = field(default_factory=list)  # the interval tree, as a list
    refcount: int = 1
    degree: int = 1

    def __repr__(self):
        return f"<anon_vma {self.id}>"


@dataclass(eq=False)
class AnonVmaChain:
    """struct anon_vma_chain: links one VMA to one anon_vma (a VMA has one per ancestor)."""

    vma: VmAreaStruct
    anon_vma: AnonVma


@dataclass(eq=False)
class VmAreaStruct:
    """struct vm_area_struct: one contiguous range of a process's address space."""

    vm_mm: MmStruct
    vm_start: int
    vm_end: int
    vm_flags: int
    vm_pgoff: int
    anon_vma: AnonVma | None = None
    anon_vma_chain: list[AnonVmaChain] = field(default_factory=list)

    def __repr__(self):
        return f"<vma {self.vm_start:#x}-{self.vm_end:#x} {vma_flags_str(self.vm_flags)}>"


@dataclass(eq=False)
class MmStruct:
    """struct mm_struct: an address space: its VMAs, its page tables and its RSS counters.

    ``pmds`` maps a PMD index (address >> 21) to what that PMD entry holds; ``deposited``
    holds the page table set aside when a THP was mapped by a PMD (pgtable_trans_huge_deposit).
    """

    id: int
    vmas: list[VmAreaStruct] = field(default_factory=list)  # sorted by vm_start
    pmds: dict = field(default_factory=dict)
    deposited: dict = field(default_factory=dict)
    MM_ANONPAGES: int = 0
    def_flags: int = 0  # vm_flags every new VMA gets: VM_LOCKED (| VM_LOCKONFAULT) after mlockall(MCL_FUTURE)
    owner: object = None

    def find_vma(self, address: int) -> VmAreaStruct | None:
        for vma in self.vmas:
            if vma.vm_start <= address < vma.vm_end:
                return vma
        return None

    def vmas_in(self, start: int, end: int) -> list[VmAreaStruct]:
        return [v for v in self.vmas if v.vm_start < end and start < v.vm_end]
