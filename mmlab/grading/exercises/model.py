"""Small model set-ups the exercises and their checks share: a written THP, the folio at an
address, a THP mapped by PTEs, one call's errno."""

from __future__ import annotations

import errno
from collections.abc import Callable

from mmlab import HPAGE_PMD_SIZE, MADV_HUGEPAGE, PAGE_SIZE, PROT_READ, PROT_WRITE, Machine
from mmlab.include.pgtable import PmdHuge, pmd_index

THP = HPAGE_PMD_SIZE


def thp_process(m: Machine, nr_thps: int = 1, value: int = 7):
    """A new process with ``nr_thps`` PMD-mapped THPs, every byte ``value``: (process, address)."""
    p = m.spawn()
    a = p.mmap(nr_thps * THP)
    p.madvise(a, nr_thps * THP, MADV_HUGEPAGE)
    p.write(a, nr_thps * THP, value=value)
    return p, a


def folio_at(p, addr: int):
    """The folio mapped at ``addr`` (by a huge PMD or a PTE), or None."""
    entry = p.mm.pmds.get(pmd_index(addr))
    if isinstance(entry, PmdHuge):
        return entry.folio
    pte = entry.ptes[(addr % THP) // PAGE_SIZE] if entry is not None else None
    return pte.folio if pte is not None else None


def pte_map(p, a: int) -> None:
    """Split the huge PMD at ``a`` and leave the THP mapped by 512 PTEs in one VMA again:
    mprotect() of one page cuts the VMA (and so the PMD), and mprotect() back merges it."""
    p.mprotect(a, PAGE_SIZE, PROT_READ)
    p.mprotect(a, PAGE_SIZE, PROT_READ | PROT_WRITE)


def errno_name(call: Callable, *args) -> str:
    """Make one call: "ok", or the errno name it failed with ("EINVAL")."""
    try:
        call(*args)
    except OSError as error:
        return errno.errorcode[error.errno]
    return "ok"
