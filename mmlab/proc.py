"""What /proc shows, as values both backends produce: smaps fields, the page map, and the
one-character-per-2-MiB summary.

The model fills these from its own page tables and folios (mmlab.machine); the live lab
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



# ---------------------------------------------------------------- the model's /proc (~ fs/proc/task_mmu.c)


def _smaps_account(acc: dict, folio, page: int, nr: int, dirty_entry: bool, young: bool, locked: bool) -> None:
    """smaps_account(): add ``nr`` pages of ``folio`` starting at ``page`` to a VMA's fields."""
    from .include.mm_types import folio_precise_page_mapcount
    from .include.page_flags import PG

    size = nr * 4
    dirty = dirty_entry or bool(folio.flags & PG.dirty)
    acc["Rss"] += size
    if folio.flags & PG.anon:
        acc["Anonymous"] += size
        if not folio.flags & PG.swapbacked and not dirty:
            acc["LazyFree"] += size
    if young or folio.flags & PG.referenced:
        acc["Referenced"] += size
    for i in range(page, page + nr):
        mapcount = folio_precise_page_mapcount(folio, i)
        shared = mapcount >= 2
        pss = 4 / mapcount if shared else 4
        acc["Pss"] += pss
        if locked:
            acc["Locked"] += pss
        acc[("Shared_" if shared else "Private_") + ("Dirty" if dirty else "Clean")] += 4


def smaps_of(mm) -> Smaps:
    """/proc/PID/smaps of a model mm, computed from its page tables as the kernel does."""
    from .include.mm_types import VM_LOCKED, VM_READ, VM_WRITE
    from .include.page_flags import PG
    from .include.pgtable import PmdHuge, pmd_index, pte_index

    vmas = []
    for vma in mm.vmas:
        acc = dict.fromkeys(SMAPS_FIELDS, 0.0)
        acc["Size"] = (vma.vm_end - vma.vm_start) // 1024
        locked = bool(vma.vm_flags & VM_LOCKED)
        for index in range(pmd_index(vma.vm_start), pmd_index(vma.vm_end - 1) + 1):
            entry = mm.pmds.get(index)
            if entry is None:
                continue
            if isinstance(entry, PmdHuge):
                if not entry.folio.flags & PG.zero:
                    _smaps_account(acc, entry.folio, 0, entry.folio.nr_pages, entry.dirty, entry.young, locked)
                    acc["AnonHugePages"] += HPAGE_PMD_SIZE // 1024
                continue
            lo = max(vma.vm_start, index << 21)
            hi = min(vma.vm_end, (index + 1) << 21)
            for pte in entry.ptes[pte_index(lo):pte_index(hi - 1) + 1]:
                if pte is not None and not pte.folio.flags & PG.zero:
                    _smaps_account(acc, pte.folio, pte.page, 1, pte.dirty, pte.young, locked)
        fields = {name: int(acc[name]) for name in SMAPS_FIELDS}
        perms = ("r" if vma.vm_flags & VM_READ else "-") + ("w" if vma.vm_flags & VM_WRITE else "-") + "-p"
        from .include.mm_types import vma_flags_str

        vmas.append(SmapsVma(vma.vm_start, vma.vm_end, perms, fields, tuple(vma_flags_str(vma.vm_flags).split())))
    return Smaps(vmas)


def pagemap_of(mm, start: int, length: int) -> list[PageInfo]:
    """pagemap + kpageflags + kpagecount for every page of [start, start + length)."""
    from .include.mm_types import folio_precise_page_mapcount
    from .include.page_flags import PG
    from .include.pgtable import PmdHuge, pmd_index, pte_index
    from .uapi import PAGE_SIZE

    pages = []
    for addr in range(start, start + length, PAGE_SIZE):
        entry = mm.pmds.get(pmd_index(addr))
        if isinstance(entry, PmdHuge):
            folio, page, pmd_mapped = entry.folio, (addr % HPAGE_PMD_SIZE) // PAGE_SIZE, True
        else:
            pte = entry.ptes[pte_index(addr)] if entry is not None else None
            if pte is None:
                pages.append(PageInfo(addr, present=False))
                continue
            folio, page, pmd_mapped = pte.folio, pte.page, False
        f = folio.flags
        zero = bool(f & PG.zero)
        pages.append(PageInfo(
            addr, True, pfn=folio.pfn + page, thp=folio.order >= 9, pmd_mapped=pmd_mapped,
            zero_page=zero, dirty=bool(f & PG.dirty), swapbacked=bool(f & PG.swapbacked),
            mlocked=bool(f & PG.mlocked), unevictable=bool(f & PG.unevictable), lru=bool(f & PG.lru),
            active=bool(f & PG.active), anon=bool(f & PG.anon),
            mapcount=0 if zero else folio_precise_page_mapcount(folio, page),
        ))
    return pages
