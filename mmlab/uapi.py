"""The user-space ABI the model and the live lab share: sizes, madvise advice values,
mmap/mlock flags, as x86-64 Linux defines them (include/uapi/asm-generic/mman-common.h).

Both backends take these numbers, so a scenario written with them runs unchanged on the
model and on the real kernel.
"""

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB

PAGE_SHIFT = 12
PAGE_SIZE = 1 << PAGE_SHIFT
PMD_SHIFT = 21
HPAGE_PMD_SIZE = 1 << PMD_SHIFT
HPAGE_PMD_ORDER = PMD_SHIFT - PAGE_SHIFT
HPAGE_PMD_NR = 1 << HPAGE_PMD_ORDER  # 512 base pages in a PMD THP
PTRS_PER_PTE = 512

PROT_NONE = 0x0
PROT_READ = 0x1
PROT_WRITE = 0x2

MADV_NORMAL = 0
MADV_DONTNEED = 4
MADV_FREE = 8
MADV_HUGEPAGE = 14
MADV_NOHUGEPAGE = 15
MADV_COLD = 20
MADV_PAGEOUT = 21
MADV_COLLAPSE = 25

MLOCK_ONFAULT = 0x01

MCL_CURRENT = 1
MCL_FUTURE = 2
MCL_ONFAULT = 4

MREMAP_MAYMOVE = 1
MREMAP_FIXED = 2

ADVICE_NAMES = {
    MADV_NORMAL: "MADV_NORMAL",
    MADV_DONTNEED: "MADV_DONTNEED",
    MADV_FREE: "MADV_FREE",
    MADV_HUGEPAGE: "MADV_HUGEPAGE",
    MADV_NOHUGEPAGE: "MADV_NOHUGEPAGE",
    MADV_COLD: "MADV_COLD",
    MADV_PAGEOUT: "MADV_PAGEOUT",
    MADV_COLLAPSE: "MADV_COLLAPSE",
}

# One character per 2 MiB slot, as Process.thp_map() reports it.
SLOT_LEGEND = {
    "H": "PMD-mapped THP",
    "Z": "huge zero page",
    "T": "THP mapped entirely by PTEs",
    "t": "THP partly mapped by PTEs",
    "s": "small folios only",
    "x": "a mix (THP pages and small folios)",
    "-": "nothing mapped",
}


class SegmentationFault(Exception):
    """The access would raise SIGSEGV: no mapping there, or the mapping does not allow it."""
