"""Reading /proc into the shared observation types of mmlab.proc.

``parse_smaps`` and ``read_vmstat`` read text; ``read_pages`` combines four sources for
one range of the calling process:

* ``/proc/self/pagemap`` entries: present bit and, for root only, the PFN;
* the ``PAGEMAP_SCAN`` ioctl on the same file (Linux 6.7+): which pages are mapped by a
  huge PMD (``PAGE_IS_HUGE``) and which map the zero page (``PAGE_IS_PFNZERO``);
* ``/proc/kpageflags`` and ``/proc/kpagecount`` (root only), indexed by PFN.

A field none of these can give is None; nothing is inferred beyond what they say, except
the documented fallbacks for PMD mappings in ``read_pages``, and one normalisation: the
folio-wide flags of a tail page of a PMD-sized folio are read from its head. In 6.12,
/proc/kpageflags reports a page's folio flags (fs/proc/page.c, stable_page_flags() reads
``folio->flags``); in 6.1 it reports the tail page's own ``page->flags``, where LRU,
dirty, mlocked and the rest are never set. The lab counts folio state per page on every
kernel.
"""

from __future__ import annotations

import ctypes
import errno
import os
import struct
from collections.abc import Iterable

from ..proc import SMAPS_FIELDS, VMSTAT_FIELDS, PageInfo, Smaps, SmapsVma
from ..uapi import HPAGE_PMD_NR, HPAGE_PMD_SIZE, PAGE_SIZE
from . import syscalls

# pagemap entry bits (Documentation/admin-guide/mm/pagemap.rst)
PM_PRESENT = 1 << 63
PM_PFN_MASK = (1 << 55) - 1

# /proc/kpageflags bits (include/uapi/linux/kernel-page-flags.h; 33 from the kernel's own list)
KPF = {
    "dirty": 4,
    "lru": 5,
    "active": 6,
    "anon": 12,
    "swapbacked": 14,
    "compound_head": 15,
    "compound_tail": 16,
    "unevictable": 18,
    "thp": 22,
    "zero_page": 24,
    "mlocked": 33,
}

# Flags kept in the folio (the head page's flags), not per page.
FOLIO_FLAGS = sum(1 << KPF[name] for name in ("dirty", "lru", "active", "swapbacked", "unevictable", "mlocked"))

# PAGEMAP_SCAN (include/uapi/linux/fs.h): _IOWR('f', 16, struct pm_scan_arg), 96-byte argument
PAGEMAP_SCAN = 0xC0606610
PAGE_IS_PRESENT = 1 << 3
PAGE_IS_PFNZERO = 1 << 5
PAGE_IS_HUGE = 1 << 6
_SCAN_REGIONS = 4096
_SCAN_RETURN = PAGE_IS_PRESENT | PAGE_IS_PFNZERO | PAGE_IS_HUGE


def read_vmstat(path: str = "/proc/vmstat") -> dict[str, int | None]:
    """The counters of VMSTAT_FIELDS from /proc/vmstat; a counter this kernel lacks is None."""
    with open(path) as f:
        values = dict(line.split() for line in f)
    return {name: int(values[name]) if name in values else None for name in VMSTAT_FIELDS}


def parse_smaps(text: str, keep: Iterable[tuple[int, int]] | None = None) -> Smaps:
    """Parse /proc/PID/smaps text; with ``keep`` (a list of [start, end) ranges), only the
    VMAs that overlap one of them."""
    ranges = list(keep) if keep is not None else None
    vmas: list[SmapsVma] = []
    for line in text.splitlines():
        head, _, rest = line.partition(" ")
        if "-" in head and not head.endswith(":"):
            start, end = (int(x, 16) for x in head.split("-"))
            vmas.append(SmapsVma(start, end, rest.split()[0], {}))
        elif head == "VmFlags:":
            vmas[-1].flags = tuple(rest.split())
        elif head.endswith(":") and head[:-1] in SMAPS_FIELDS:
            vmas[-1].fields[head[:-1]] = int(rest.split()[0])
    if ranges is not None:
        vmas = [v for v in vmas if any(v.start < e and s < v.end for s, e in ranges)]
    return Smaps(vmas)


def _read_u64s(path: str, first: int, count: int) -> tuple[int, ...]:
    with open(path, "rb", buffering=0) as f:
        f.seek(first * 8)
        data = f.read(count * 8)
    return struct.unpack(f"{len(data) // 8}Q", data)


def _runs(numbers: Iterable[int]) -> list[tuple[int, int]]:
    """Sorted distinct numbers grouped into (first, count) runs of consecutive values."""
    runs: list[list[int]] = []
    for n in sorted(set(numbers)):
        if runs and runs[-1][0] + runs[-1][1] == n:
            runs[-1][1] += 1
        else:
            runs.append([n, 1])
    return [(a, b) for a, b in runs]


def _read_by_pfn(path: str, pfns: Iterable[int]) -> dict[int, int]:
    values: dict[int, int] = {}
    for first, count in _runs(pfns):
        values.update(zip(range(first, first + count), _read_u64s(path, first, count), strict=True))
    return values


def pagemap_pfn(addr: int) -> int:
    """The PFN pagemap shows for the page at ``addr`` of this process: 0 when the page is
    not present or the caller may not see PFNs (only CAP_SYS_ADMIN may)."""
    entry = _read_u64s("/proc/self/pagemap", addr // PAGE_SIZE, 1)[0]
    return entry & PM_PFN_MASK if entry & PM_PRESENT else 0


def pagemap_scan(start: int, length: int) -> dict[int, int] | None:
    """PAGEMAP_SCAN categories of each mapped page of [start, start + length), by page
    address; None when the kernel has no PAGEMAP_SCAN (before 6.7)."""
    vec = (ctypes.c_uint64 * (3 * _SCAN_REGIONS))()
    categories: dict[int, int] = {}
    fd = os.open("/proc/self/pagemap", os.O_RDONLY)
    try:
        walk_from, end = start, start + length
        while walk_from < end:
            # size, flags, start, end, walk_end, vec, vec_len, max_pages,
            # category_inverted, category_mask, category_anyof_mask, return_mask
            arg = (ctypes.c_uint64 * 12)(
                96, 0, walk_from, end, 0, ctypes.addressof(vec), _SCAN_REGIONS, 0, 0, 0, 0, _SCAN_RETURN
            )
            try:
                found = syscalls.ioctl(fd, PAGEMAP_SCAN, ctypes.addressof(arg))
            except OSError as e:
                if e.errno in (errno.ENOTTY, errno.EINVAL):
                    return None
                raise
            for i in range(found):
                lo, hi, cats = vec[3 * i], vec[3 * i + 1], vec[3 * i + 2]
                categories.update((a, cats) for a in range(lo, hi, PAGE_SIZE))
            walk_from = arg[4]  # walk_end: where the kernel stopped
    finally:
        os.close(fd)
    return categories


def _pmd_mapped_blocks(smaps: Smaps) -> dict[int, bool | None]:
    """Without PAGEMAP_SCAN: which 2 MiB blocks of each VMA are mapped by a PMD, by block
    address, inferred from smaps AnonHugePages where that is unambiguous.

    Only a 2 MiB aligned block that lies inside one VMA and is present throughout can be
    PMD-mapped. When AnonHugePages counts exactly as many blocks as there are such
    candidates, every candidate is PMD-mapped; when it is 0, none is; otherwise the VMA's
    blocks are unknown (None)."""
    blocks: dict[int, bool | None] = {}
    for vma in smaps.vmas:
        first = -(-vma.start // HPAGE_PMD_SIZE) * HPAGE_PMD_SIZE
        aligned = range(first, vma.end - HPAGE_PMD_SIZE + 1, HPAGE_PMD_SIZE)
        candidates = {b for b in aligned if all(e & PM_PRESENT for e in _read_u64s("/proc/self/pagemap",
                                                                                    b // PAGE_SIZE, HPAGE_PMD_NR))}
        huge = vma.fields.get("AnonHugePages", 0)
        if huge == 0:
            blocks.update(dict.fromkeys(aligned, False))
        elif huge == len(candidates) * (HPAGE_PMD_SIZE >> 10):
            blocks.update({b: b in candidates for b in aligned})
        else:
            blocks.update(dict.fromkeys(aligned, None))
    return blocks


def _bit(bits: int | None, name: str) -> bool | None:
    return None if bits is None else bool(bits >> KPF[name] & 1)


def _pmd_sized_blocks(flags_by_pfn: dict[int, int], blocks: Iterable[int]) -> set[int]:
    """The 512-page PFN blocks that hold one PMD-sized folio: a compound head followed by
    511 tails (smaller mTHP folios are THP to kpageflags too)."""

    def bit(pfn, name):
        return flags_by_pfn.get(pfn, 0) >> KPF[name] & 1

    return {
        b
        for b in blocks
        if bit(b, "compound_head") and all(bit(b + i, "compound_tail") for i in range(1, HPAGE_PMD_NR))
    }


def read_pages(start: int, length: int, smaps: Smaps, root: bool) -> list[PageInfo]:
    """One PageInfo per 4 KiB page of [start, start + length) of the calling process.

    ``smaps`` is this process's smaps (used only when PAGEMAP_SCAN is missing); ``root``
    says whether PFNs, /proc/kpageflags and /proc/kpagecount can be read.
    """
    first, count = start // PAGE_SIZE, length // PAGE_SIZE
    entries = _read_u64s("/proc/self/pagemap", first, count)
    scan = pagemap_scan(start, length)
    pfns = {i: e & PM_PFN_MASK for i, e in enumerate(entries) if e & PM_PRESENT}
    flags: dict[int, int] = {}
    counts: dict[int, int] = {}
    pmd_sized: set[int] = set()
    if root and pfns:
        flags = _read_by_pfn("/proc/kpageflags", pfns.values())
        thp_blocks = {p - p % HPAGE_PMD_NR for p, f in flags.items() if f >> KPF["thp"] & 1}
        flags.update(_read_by_pfn("/proc/kpageflags", (b + i for b in thp_blocks for i in range(HPAGE_PMD_NR))))
        pmd_sized = _pmd_sized_blocks(flags, thp_blocks)
        counts = _read_by_pfn("/proc/kpagecount", pfns.values())
    pmd_blocks = _pmd_mapped_blocks(smaps) if scan is None else {}
    pages = []
    for i in range(count):
        addr = start + i * PAGE_SIZE
        if i not in pfns:
            pages.append(PageInfo(addr, present=False))
            continue
        pfn = pfns[i] if root else None
        bits = flags.get(pfn) if pfn is not None else None
        in_pmd_folio = pfn is not None and pfn - pfn % HPAGE_PMD_NR in pmd_sized
        if in_pmd_folio and bits >> KPF["compound_tail"] & 1:
            bits = bits & ~FOLIO_FLAGS | flags[pfn - pfn % HPAGE_PMD_NR] & FOLIO_FLAGS
        cats = scan.get(addr, 0) if scan is not None else None
        if cats is not None:
            pmd_mapped, zero = bool(cats & PAGE_IS_HUGE), bool(cats & PAGE_IS_PFNZERO)
        else:
            zero = _bit(bits, "zero_page")
            # The huge zero page is only ever mapped by a PMD (a split maps small zero pages).
            pmd_mapped = True if zero and in_pmd_folio else pmd_blocks.get(addr - addr % HPAGE_PMD_SIZE, False)
        pages.append(
            PageInfo(
                addr,
                present=True,
                pfn=pfn,
                thp=None if bits is None else bool(_bit(bits, "thp")) and in_pmd_folio,
                pmd_mapped=pmd_mapped,
                zero_page=zero,
                dirty=_bit(bits, "dirty"),
                swapbacked=_bit(bits, "swapbacked"),
                mlocked=_bit(bits, "mlocked"),
                unevictable=_bit(bits, "unevictable"),
                lru=_bit(bits, "lru"),
                active=_bit(bits, "active"),
                anon=_bit(bits, "anon"),
                mapcount=counts.get(pfn) if pfn is not None else None,
            )
        )
    return pages
