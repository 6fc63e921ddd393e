"""``page_tables_dot``: a process's page tables over a range, as a diagram.

The PMD level is one table with a row per 2 MiB slot, headed by the slot's character in
``Process.thp_map``. A few slots are drawn in full: a huge PMD points at its folio (or the
huge zero page) and at the PTE table it deposited for a later split; a PTE table shows its
512 entries as runs of like entries ("PTE 0-511 -> pages 0-511 of folio 0x100000, rw,
dirty"). The other slots are summarised, and consecutive summarised slots with the same
character share one row, so a 1 GiB range still makes a small diagram.
"""

from __future__ import annotations

from ..include.mm import vma_flags_str
from ..include.pgtable import PmdHuge, PteTable, pmd_index
from ..uapi import HPAGE_PMD_SIZE, PAGE_SIZE, SLOT_LEGEND
from .dot import COLOURS, Graph, cell, row, span_text, table
from .entries import PteRun, bits, pte_runs, slot_summary
from .folio import add_folio, flags_colour

EXPAND = 4  # slots drawn in full by default
MAX_RUN_ROWS = 16  # rows of a PTE table before "... more runs"


def model_mm(process):
    """The model mm behind a Process, or a clear error for anything else."""
    mm = getattr(process, "mm", None)
    if mm is None:
        raise TypeError(f"{process!r} has no model page tables to draw (a live process keeps its own in the "
                        "kernel): pass a process of mmlab.Machine, or read p.thp_map() and p.pagemap()")
    return mm


def resolve_range(mm, addr: int | None, length: int | None) -> tuple[int, int]:
    """[addr, addr + length), or, when both are None, the range spanning every VMA of
    ``mm`` (one slot at 0 if there is none)."""
    if (addr is None) != (length is None):
        raise ValueError("give both addr and length, or neither (to draw the whole address space)")
    if addr is not None:
        return addr, length
    if not mm.vmas:
        return 0, HPAGE_PMD_SIZE
    return mm.vmas[0].vm_start, mm.vmas[-1].vm_end - mm.vmas[0].vm_start


def slots_of(addr: int, length: int) -> list[int]:
    """Start addresses of the 2 MiB slots that [addr, addr + length) touches."""
    if length <= 0:
        raise ValueError(f"length must be positive, not {length}")
    first = addr - addr % HPAGE_PMD_SIZE
    return list(range(first, addr + length, HPAGE_PMD_SIZE))


def slot_chars(process, addr: int, length: int) -> str:
    """``process.thp_map(addr, length)``, read from the page tables directly (faster)."""
    mm = model_mm(process)
    return "".join(slot_summary(mm, start) for start in slots_of(addr, length))


def choose_expanded(mm, slots: list[int], chars: list[str], expand: int) -> set[int]:
    """The slots to draw in full: all if there are at most ``expand`` with something in
    them, else the first slot of each run of like slots, in address order, up to ``expand``."""
    filled = [s for s in slots if mm.pmds.get(pmd_index(s)) is not None]
    if len(filled) <= expand:
        return set(filled)
    chosen = []
    for i, start in enumerate(slots):
        if start in filled and (i == 0 or chars[i] != chars[i - 1]):
            chosen.append(start)
    return set(chosen[:expand])


def _run_row(run: PteRun, port: str) -> str:
    """One row of a PTE table; edges to the folio leave from its last cell."""
    ptes = cell(f"PTE {span_text(run.first, run.last)}")
    if run.kind == "none":
        return row(ptes, cell("none", span=2))
    if run.kind == "zero":
        return row(ptes, cell("zero page"), cell(run.bits, port=port))
    if run.kind == "folio":
        return row(ptes, cell(f"pages {span_text(run.page, run.page + run.count - 1)}"), cell(run.bits, port=port))
    pfns = f"pfn {run.folio.pfn:#x}" + (f"-{run.folio.pfn + run.count - 1:#x}" if run.count > 1 else "")
    return row(ptes, cell(f"{run.count} small folio(s), {pfns}", colour=flags_colour(run.folio.flags)),
               cell(run.bits, port=port))


def _add_pte_table(graph: Graph, name: str, start: int, table_: PteTable) -> None:
    found = pte_runs(table_)
    shown = found[:MAX_RUN_ROWS]
    rows = [_run_row(run, f"r{run.first}") for run in shown]
    if len(found) > len(shown):
        rows.append(row(cell(f"... {len(found) - len(shown)} more runs", span=3)))
    graph.node(name, table(f"PTE table {start:#x}", rows, width=3))
    for run in shown:
        if run.kind in ("zero", "folio"):
            graph.edge(f"{name}:r{run.first}", add_folio(graph, run.folio))


def _add_slot(graph: Graph, pid: int, mm, start: int) -> str:
    """Draw one slot in full; return the text of its PMD row."""
    entry = mm.pmds.get(pmd_index(start))
    port = f"pmd_{pid}:s{start:x}"
    if isinstance(entry, PmdHuge):
        graph.edge(port, add_folio(graph, entry.folio), label=bits(entry))
        deposited = mm.deposited.get(pmd_index(start))
        if deposited is not None:
            name = graph.node(f"deposit_{pid}_{start:x}", "deposited PTE table\n(empty, for a later split)",
                              shape="box", style="dashed")
            graph.edge(port, name, style="dashed", arrowhead="odot")
        return "huge PMD"
    name = f"pte_{pid}_{start:x}"
    _add_pte_table(graph, name, start, entry)
    graph.edge(port, name)
    return "PTE table"


def page_tables_dot(process, addr: int | None = None, length: int | None = None, *, expand: int = EXPAND) -> str:
    """The page tables of a model ``process`` over [addr, addr + length) (default: all of
    its VMAs). At most ``expand`` slots are drawn in full; the rest are summarised."""
    mm = model_mm(process)
    addr, length = resolve_range(mm, addr, length)
    slots = slots_of(addr, length)
    chars = [slot_summary(mm, start) for start in slots]
    expanded = choose_expanded(mm, slots, chars, expand)
    pid = mm.id
    graph = Graph(f"page tables {pid} {addr:#x}+{length:#x}")

    vma_rows = [row(cell(f"VMA {v.vm_start:#x}-{v.vm_end:#x}"), cell(vma_flags_str(v.vm_flags)))
                for v in mm.vmas_in(addr, addr + length)] or [row(cell("no VMA in this range", span=2))]
    graph.node(f"mm_{pid}", table(f"process {pid} (mm {pid})", vma_rows, width=2))

    rows = []
    i = 0
    while i < len(slots):
        start, char = slots[i], chars[i]
        if start in expanded:
            what = _add_slot(graph, pid, mm, start)
            rows.append(row(cell(f"{start:#x}"), cell(char, bold=True), cell(what, port=f"s{start:x}")))
            i += 1
            continue
        j = i
        while j + 1 < len(slots) and chars[j + 1] == char and slots[j + 1] not in expanded:
            j += 1
        count = j - i + 1
        where = f"{start:#x}" if count == 1 else f"{start:#x}-{slots[j] + HPAGE_PMD_SIZE - PAGE_SIZE:#x}"
        summary = SLOT_LEGEND.get(char, char) + (f" (x{count})" if count > 1 else "")
        colour = COLOURS["empty"] if char == "-" else COLOURS["header"]
        rows.append(row(cell(where), cell(char * min(count, 8), bold=True), cell(summary, colour=colour)))
        i = j + 1
    graph.node(f"pmd_{pid}", table(f"PMD entries ({len(slots)} x 2 MiB)", rows, width=3))
    graph.edge(f"mm_{pid}", f"pmd_{pid}")
    return graph.source()
