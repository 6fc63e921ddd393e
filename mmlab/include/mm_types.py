"""The structures of include/linux/mm_types.h and rmap.h that the model needs:
struct folio, vm_area_struct, mm_struct, anon_vma and anon_vma_chain.

Fields keep the kernel's names and its conventions: ``_mapcount``, ``_large_mapcount`` and
``_entire_mapcount`` start at -1 (the kernel stores "mappings - 1"); the ``folio_*`` helpers
add the 1 back. Simplification: the per-CPU LRU and mlock batches are not modelled, so a
folio reaches its LRU list at once (the kernel does this immediately for large folios only).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from ..uapi import PAGE_SHIFT
from .page_flags import PG, flag_names

# vm_area_struct->vm_flags (include/linux/mm.h)
VM_READ = 0x1
VM_WRITE = 0x2
VM_LOCKED = 0x2000
VM_HUGEPAGE = 0x20000000
VM_NOHUGEPAGE = 0x40000000
VM_LOCKONFAULT = 0x100000000
VM_LOCKED_MASK = VM_LOCKED | VM_LOCKONFAULT

# The flags a new anonymous folio starts with (folio_add_new_anon_rmap + __folio_set_swapbacked).
PG_ANON_NEW = PG.anon | PG.swapbacked | PG.uptodate

GUP_PIN_COUNTING_BIAS = 1024  # include/linux/mm.h: how a pin of a small folio is counted


@dataclass(eq=False)
class Folio:
    """struct folio: one or more physically contiguous pages managed as a unit.

    ``data`` holds each page's contents: an int when every byte of the page holds that value
    (a page never written, or filled whole: the common case, kept cheap), else a bytearray
    of PAGE_SIZE bytes (see mmlab.memory's page_* helpers).
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
        """Its counts and flags now: what a trace event records and a step diagram compares."""
        return FolioSnapshot((self.pfn, self.order, self._refcount, folio_mapcount(self),
                              folio_entire_mapcount(self), self.flags, self.lru))

    def __repr__(self):
        kind = f"THP order {self.order}" if self.order else "small"
        return (
            f"<folio pfn={self.pfn:#x} {kind} ref={self._refcount} map={folio_mapcount(self)} "
            f"{'|'.join(flag_names(self.flags))}>"
        )

    def _repr_mimebundle_(self, include=None, exclude=None):
        from ..viz import mimebundle  # a diagram in notebooks; imported late so the model needs no viz

        return mimebundle(self, include, exclude)


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


def folio_ref_count(folio: Folio) -> int:
    return folio._refcount


def folio_mapcount(folio: Folio) -> int:
    """How many page-table entries map some part of the folio (a PMD counts once)."""
    if folio.order == 0:
        return folio._mapcount[0] + 1
    return folio._large_mapcount + 1


def folio_entire_mapcount(folio: Folio) -> int:
    return folio._entire_mapcount + 1


def folio_mapped(folio: Folio) -> bool:
    return folio_mapcount(folio) > 0


def folio_precise_page_mapcount(folio: Folio, page: int) -> int:
    """What /proc/kpagecount reports for one page: its PTE mappings plus the PMD ones."""
    return folio._mapcount[page] + 1 + folio_entire_mapcount(folio)


def folio_maybe_dma_pinned(folio: Folio) -> bool:
    if folio.order:
        return folio._pincount > 0
    return folio._refcount >= GUP_PIN_COUNTING_BIAS


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


def vma_flags_str(flags: int) -> str:
    names = [("rd", VM_READ), ("wr", VM_WRITE), ("lo", VM_LOCKED), ("hg", VM_HUGEPAGE), ("nh", VM_NOHUGEPAGE)]
    return " ".join(n for n, f in names if flags & f)


def linear_page_index(vma: VmAreaStruct, address: int) -> int:
    return ((address - vma.vm_start) >> PAGE_SHIFT) + vma.vm_pgoff


def vma_address(vma: VmAreaStruct, pgoff: int) -> int:
    """The address at which page offset ``pgoff`` would sit in ``vma`` (may be outside it)."""
    return vma.vm_start + ((pgoff - vma.vm_pgoff) << PAGE_SHIFT)


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
