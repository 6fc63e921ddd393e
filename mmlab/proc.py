"""What /proc shows, as values both backends produce: smaps fields, the page map, and the
one-character-per-2-MiB summary.

The model fills these from its own page tables and folios (mmlab.mm.task_mmu); the live lab
fills them from /proc/PID/smaps, pagemap, /proc/kpageflags and /proc/kpagecount
(mmlab.live). Keeping one set of types is what lets the two be compared field by field.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .uapi import HPAGE_PMD_NR, HPAGE_PMD_SIZE

# The per-VMA fields of /proc/PID/smaps that the course uses, in the kernel's order.
SMAPS_FIELDS = (
    "Size",
    "Rss",
    "Pss",
    "Shared_Clean",
    "Shared_Dirty",
    "Private_Clean",
    "Private_Dirty",
    "Referenced",
    "Anonymous",
    "LazyFree",
    "AnonHugePages",
    "Swap",
    "Locked",
)

# The /proc/vmstat counters the model keeps, named as Linux names them.
VMSTAT_FIELDS = (
    "nr_anon_pages",
    "nr_anon_transparent_hugepages",
    "nr_mlock",
    "pgfault",
    "pglazyfree",
    "pglazyfreed",
    "pgactivate",
    "pgdeactivate",
    "thp_fault_alloc",
    "thp_fault_fallback",
    "thp_collapse_alloc",
    "thp_split_pmd",
    "thp_split_page",
    "thp_split_page_failed",
    "thp_deferred_split_page",
    "thp_swpout",
    "thp_swpout_fallback",
    "thp_zero_page_alloc",
    "unevictable_pgs_mlocked",
    "unevictable_pgs_munlocked",
    "unevictable_pgs_culled",
    "unevictable_pgs_rescued",
    "unevictable_pgs_cleared",
    "unevictable_pgs_stranded",
)


@dataclass
class SmapsVma:
    """One VMA's block of /proc/PID/smaps: its range and its fields in kB."""

    start: int
    end: int
    perms: str
    fields: dict[str, int]
    flags: tuple[str, ...] = ()  # the VmFlags line's two-letter names, e.g. ("lo", "hg")


@dataclass
class Smaps:
    """/proc/PID/smaps of one process; indexing gives the total over all VMAs (kB),
    as /proc/PID/smaps_rollup does."""

    vmas: list[SmapsVma]
    total: dict[str, int] = field(init=False)

    def __post_init__(self):
        self.total = {name: sum(v.fields.get(name, 0) for v in self.vmas) for name in SMAPS_FIELDS}

    def __getitem__(self, name: str) -> int:
        return self.total[name]

    def range(self, start: int, length: int) -> dict[str, int]:
        """The totals over the VMAs that overlap [start, start + length)."""
        inside = [v for v in self.vmas if v.start < start + length and start < v.end]
        return {name: sum(v.fields.get(name, 0) for v in inside) for name in SMAPS_FIELDS}


@dataclass(frozen=True)
class PageInfo:
    """One virtual page, as pagemap + /proc/kpageflags + /proc/kpagecount describe it.

    Flags are the folio's (kpageflags reports the folio's flags for every page of it).
    A field the backend could not read (the live lab without root) is None, never a guess.
    """

    addr: int
    present: bool
    pfn: int | None = None
    thp: bool | None = None  # part of a PMD-sized folio (KPF_THP)
    pmd_mapped: bool | None = None  # mapped by a huge PMD in this process
    zero_page: bool | None = None  # the (huge) zero page
    dirty: bool | None = None  # PG_dirty (not the PTE/PMD dirty bit)
    swapbacked: bool | None = None
    mlocked: bool | None = None
    unevictable: bool | None = None
    lru: bool | None = None
    active: bool | None = None
    anon: bool | None = None
    mapcount: int | None = None  # /proc/kpagecount


def slot_char(pages: list[PageInfo]) -> str:
    """Summarise the 512 pages of one 2 MiB slot in one character (see uapi.SLOT_LEGEND)."""
    present = [p for p in pages if p.present]
    if not present:
        return "-"
    if any(p.zero_page and p.pmd_mapped for p in present):
        return "Z"
    if any(p.thp is None for p in present):
        return "H" if all(p.pmd_mapped for p in present) and len(present) == len(pages) else "?"
    if len(present) == len(pages) and all(p.pmd_mapped for p in present):
        return "H"
    thp = [p for p in present if p.thp]
    if not thp:
        return "s"
    if len(thp) != len(present):
        return "x"
    if any(p.pmd_mapped is None for p in present):
        return "?"  # a THP, but whether a PMD maps it is unknown
    whole = (
        len(present) == len(pages) and len({p.pfn // HPAGE_PMD_NR for p in present if p.pfn is not None}) <= 1
    )
    return "T" if whole else "t"


def thp_map(pages: list[PageInfo], start: int, length: int) -> str:
    """One character per 2 MiB slot of [start, start + length), from a page list."""
    by_slot: dict[int, list[PageInfo]] = {}
    for p in pages:
        by_slot.setdefault((p.addr - start) // HPAGE_PMD_SIZE, []).append(p)
    nslots = -(-length // HPAGE_PMD_SIZE)
    return "".join(slot_char(by_slot.get(i, [])) for i in range(nslots))
