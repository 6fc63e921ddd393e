"""Folios in diagrams: their node names and labels, ``folio_dot`` (one folio: its counts,
flags and the page tables that map it) and ``step_dot`` (a folio before and after one
step, from trace snapshots).
"""

from __future__ import annotations

import textwrap

from ..include.mm import folio_entire_mapcount, folio_mapcount
from ..include.mm_types import Folio
from ..include.page_flags import PG, flag_names
from .dot import COLOURS, Graph, cell, row, runs, span_text, table
from .entries import folio_mappings

MAX_PAGE_RUNS = 8  # per-page mapcounts shown before "..."


def folio_node(folio: Folio) -> str:
    """A node name from the folio's identity: its PFN (the zero pages have their own)."""
    if folio.flags & PG.zero:
        return "huge_zero_page" if folio.order else "zero_page"
    return f"folio_{folio.pfn:x}"


def folio_title(folio: Folio) -> str:
    if folio.flags & PG.zero:
        return "huge zero page" if folio.order else "zero page"
    return f"folio {folio.pfn:#x}"


def size_text(order: int) -> str:
    if order == 0:
        return "small (1 page)"
    return f"{'THP' if order >= 9 else 'large'}, order {order} ({1 << order} pages)"


def flags_colour(flags: int) -> str:
    """The fill that shows a folio's most telling state."""
    if flags & PG.zero:
        return COLOURS["zero"]
    if flags & PG.mlocked:
        return COLOURS["mlocked"]
    if flags & PG.anon and not flags & PG.swapbacked:
        return COLOURS["lazyfree"]
    if flags & PG.dirty:
        return COLOURS["dirty"]
    return COLOURS["anon"] if flags & PG.anon else COLOURS["empty"]


def flags_text(flags: int) -> str:
    """The flag names, on lines of a few names each."""
    return "\n".join(textwrap.wrap(" ".join(flag_names(flags)), 30)) or "none"


def folio_rows(folio: Folio) -> list[str]:
    """A few lines that identify a folio's state, for diagrams that show many folios."""
    if folio.flags & PG.zero:
        return [row(cell("shared, read-only, never freed"))]
    if not folio.flags:
        return [row(cell(size_text(folio.order))), row(cell("freed"))]
    return [
        row(cell(size_text(folio.order))),
        row(cell(f"refcount {folio._refcount} · mapcount {folio_mapcount(folio)}")),
        row(cell(flags_text(folio.flags))),
    ]


def add_folio(graph: Graph, folio: Folio) -> str:
    """Add the short folio node to ``graph`` (once) and return its name."""
    return graph.node(folio_node(folio), table(folio_title(folio), folio_rows(folio), colour=flags_colour(folio.flags)))


def page_mapcounts(folio: Folio) -> str:
    """Per-page mapcounts (as /proc/kpagecount counts them) in runs: ``0-510: 1, 511: 0``."""
    entire = folio_entire_mapcount(folio)
    found = runs([count + 1 + entire for count in folio._mapcount])
    text = ", ".join(f"{span_text(a, b)}: {value}" for a, b, value in found[:MAX_PAGE_RUNS])
    return text + (f", ... ({len(found) - MAX_PAGE_RUNS} more runs)" if len(found) > MAX_PAGE_RUNS else "")


def _detail_rows(folio: Folio) -> list[str]:
    fields = [("size", size_text(folio.order)), ("_refcount", folio._refcount),
              ("mapcount", folio_mapcount(folio))]
    if folio.order:
        fields += [("entire mapcount", folio_entire_mapcount(folio)), ("pages PTE-mapped", folio._nr_pages_mapped),
                   ("page mapcounts", page_mapcounts(folio)), ("_pincount", folio._pincount)]
    fields += [("mlock_count", folio.mlock_count), ("flags", flags_text(folio.flags)),
               ("LRU list", folio.lru or "none")]
    if folio.anon_vma is not None:
        fields += [("anon_vma", f"{folio.anon_vma.id} (index {folio.index:#x})")]
    if folio.deferred_split:
        fields += [("deferred split", "queued")]
    return [row(cell(name), cell(value)) for name, value in fields]


def folio_dot(folio: Folio) -> str:
    """One folio: its counts and flags, and every page-table entry that maps it (grouped per
    process, runs of PTEs summarised), found through its anon_vma as the rmap walk would."""
    graph = Graph(f"folio {folio.pfn:#x}")
    label = table(folio_title(folio), _detail_rows(folio), colour=flags_colour(folio.flags), width=2)
    name = graph.node(folio_node(folio), label)
    if folio.flags & PG.zero:
        graph.node("note", table("not reverse-mapped", [row(cell("any process that reads memory it never "
                                                                  "wrote may map it"))]))
        graph.edge("note", name, style="dashed")
        return graph.source()
    by_mm: dict[int, list] = {}
    for mapping in folio_mappings(folio):
        by_mm.setdefault(mapping.mm, []).append(mapping)
    for mm, mappings in by_mm.items():
        rows = []
        for i, m in enumerate(mappings):
            what = (f"{m.kind} at {m.address:#x}" if m.kind == "PMD"
                    else f"{m.last_page - m.first_page + 1} PTE(s) from {m.address:#x}")
            rows.append(row(cell(what), cell(f"pages {span_text(m.first_page, m.last_page)}"),
                            cell(m.bits, port=f"m{i}")))
        node = graph.node(f"mm_{mm}", table(f"mm {mm} maps it", rows, width=3))
        for i in range(len(mappings)):
            graph.edge(f"{node}:m{i}", name)
    if not by_mm:
        graph.node("note", table("mapped nowhere", [row(cell("no page table maps this folio"))]))
        graph.edge("note", name, style="dashed")
    return graph.source()


# ---------------------------------------------------------------- one step, from snapshots

SNAPSHOT_FIELDS = ("pfn", "order", "refcount", "mapcount", "entire_mapcount", "flags", "lru")


def as_snapshot(state) -> dict | None:
    """A trace snapshot (``Folio.snapshot()``) of a Folio, or the snapshot itself."""
    return state.snapshot() if isinstance(state, Folio) else state


def _show(field: str, value) -> str:
    if field == "pfn":
        return f"{value:#x}"
    if field == "flags":
        return " ".join(value) or "none"
    return "none" if value is None else str(value)


def _flag_changes(before: list, after: list) -> str:
    return " ".join([f"+{f}" for f in after if f not in before] + [f"-{f}" for f in before if f not in after])


def _snapshot_rows(snap: dict, other: dict | None) -> list[str]:
    rows = []
    for field in SNAPSHOT_FIELDS:
        value = _show(field, snap.get(field))
        changed = other is not None and other.get(field) != snap.get(field)
        if changed and field == "flags":
            value += f"  ({_flag_changes(other['flags'], snap['flags'])})"
        colour = COLOURS["changed"] if changed else None
        rows.append(row(cell(field, colour=colour), cell(value, colour=colour, bold=changed)))
    return rows


def _snapshot_colour(snap: dict) -> str:
    return flags_colour(sum(PG[name] for name in snap["flags"]))


def step_dot(before, after, label: str = "") -> str:
    """A folio before and after one step, fields that changed highlighted. ``before`` and
    ``after`` are trace snapshots (``Event.folio``) or Folios; either may be None (the step
    created the folio, or recorded no folio state)."""
    before, after = as_snapshot(before), as_snapshot(after)
    graph = Graph("step")
    if before is not None:
        graph.node("before", table("before", _snapshot_rows(before, None), colour=_snapshot_colour(before), width=2))
    if after is not None:
        title = f"after {label}" if label else "after"
        graph.node("after", table(title, _snapshot_rows(after, before), colour=_snapshot_colour(after), width=2))
    else:
        graph.node("after", table(f"after {label}".strip(), [row(cell("no folio state recorded at this step"))]))
    if before is not None:
        graph.edge("before", "after", label=label)
    return graph.source()
