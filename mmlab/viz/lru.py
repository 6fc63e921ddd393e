"""``lru_dot``: a machine's five LRU lists and the folios on them.

Dashed grey edges are not state: they show the moves this course is about, the one
MADV_FREE makes (anon lists -> inactive file list, PG_swapbacked cleared) and the one
reclaim makes when it finds a lazyfree folio written again (back to the anon side).
"""

from __future__ import annotations

from ..include.mm_inline import LRU_LISTS
from .dot import Graph, cell, row, table
from .folio import flags_colour, size_text

MAX_LRU_ROWS = 8  # folios listed per LRU list before "..."

# Two columns, so that the drawing stays narrow enough to be read at full size: the anon
# lists (and the unevictable one) on the left, the file lists, where MADV_FREE moves
# folios, on the right.
COLUMNS = (("inactive_anon", "active_anon", "unevictable"), ("inactive_file", "active_file"))

MOVES = (
    ("inactive_anon", "inactive_file", "MADV_FREE"),
    ("active_anon", "inactive_file", "MADV_FREE"),
    ("inactive_file", "active_anon", "reclaim: written again"),
)


def _folio_row(folio) -> str:
    text = f"{folio.pfn:#x}  {size_text(folio.order)}  ref {folio._refcount}"
    return row(cell(text, colour=flags_colour(folio.flags)))


def lru_dot(machine) -> str:
    """The LRU lists of a model ``machine``, each with its first folios in list order."""
    lru = getattr(machine, "lru", None)
    if lru is None:
        raise TypeError(f"{machine!r} has no model LRU lists to draw: pass an mmlab.Machine")
    graph = Graph("lru", ranksep="0.6")
    for name in LRU_LISTS:
        folios = list(lru[name])
        pages = sum(f.nr_pages for f in folios)
        rows = [_folio_row(f) for f in folios[:MAX_LRU_ROWS]] or [row(cell("empty"))]
        if len(folios) > MAX_LRU_ROWS:
            rows.append(row(cell(f"... {len(folios) - MAX_LRU_ROWS} more")))
        graph.node(f"lru_{name}", table(f"{name}: {len(folios)} folio(s), {pages} pages", rows))
    for column in COLUMNS:
        graph.same_rank(*(f"lru_{name}" for name in column))
        for upper, lower in zip(column, column[1:], strict=False):  # invisible: keeps each column in list order
            graph.edge(f"lru_{upper}", f"lru_{lower}", style="invis")
    for tail, head, label in MOVES:
        graph.edge(f"lru_{tail}", f"lru_{head}", label=label, style="dashed", color="grey50", fontcolor="grey40")
    return graph.source()
