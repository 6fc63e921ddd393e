"""``rmap_dot``: the reverse map of one anonymous folio, the path an rmap walk follows:
folio -> anon_vma -> anon_vma_chain -> VMA -> mm.

After a fork the parent's anon_vma also links the child's VMA, and the child's VMA has an
anon_vma of its own whose parent is the parent's: both show, so the picture explains why
a walk for a folio the parent faulted visits the child too. Each VMA says what the walk
finds there: the folio mapped by a PMD, by PTEs, or not at all.
"""

from __future__ import annotations

from ..include.mm import vma_flags_str
from ..include.mm_types import AnonVma, Folio
from ..include.page_flags import PG
from ..include.rmap import anon_vma_vmas
from .dot import Graph, cell, row, span_text, table
from .entries import mappings_in
from .folio import add_folio


def _anon_vma_node(graph: Graph, av: AnonVma, drawn: dict[int, AnonVma]) -> str:
    drawn[av.id] = av
    rows = [row(cell(f"root {av.root.id}" if av.root is not av else "root: itself")),
            row(cell(f"{len(av.rb_root)} chain link(s)"))]
    return graph.node(f"anon_vma_{av.id}", table(f"anon_vma {av.id}", rows))


def _what_the_walk_finds(folio: Folio, vma, address: int) -> str:
    found = mappings_in(folio, vma, address)
    if not found:
        return "maps none of it (never faulted here, COW-copied, or unmapped)"
    return "; ".join(f"{m.kind}: pages {span_text(m.first_page, m.last_page)}" for m in found)


def rmap_dot(folio: Folio) -> str:
    """The anon_vmas, chains, VMAs and mms an rmap walk of ``folio`` goes through."""
    graph = Graph(f"rmap {folio.pfn:#x}")
    name = add_folio(graph, folio)
    if folio.flags & PG.zero or folio.anon_vma is None:
        graph.node("note", table("no reverse map", [row(cell(
            "the zero pages are not reverse-mapped" if folio.flags & PG.zero else "this folio has no anon_vma"))]))
        graph.edge(name, "note", style="dashed")
        return graph.source()

    drawn: dict[int, AnonVma] = {}
    home = _anon_vma_node(graph, folio.anon_vma, drawn)
    graph.edge(name, home, label=f"folio->mapping (index {folio.index:#x})")
    candidates = dict(anon_vma_vmas(folio))  # VMA -> where the walk starts in it
    for vma in [avc.vma for avc in folio.anon_vma.rb_root]:
        mm = vma.vm_mm.id
        vma_name = f"vma_{mm}_{vma.vm_start:x}"
        finds = (_what_the_walk_finds(folio, vma, candidates[vma]) if vma in candidates
                 else "outside the folio's range: skipped")
        graph.node(vma_name, table(f"VMA {vma.vm_start:#x}-{vma.vm_end:#x}", [
            row(cell(vma_flags_str(vma.vm_flags) or "no access")), row(cell(finds))]))
        for avc in vma.anon_vma_chain:
            av_name = _anon_vma_node(graph, avc.anon_vma, drawn)
            avc_name = graph.node(f"avc_{mm}_{vma.vm_start:x}_{avc.anon_vma.id}", "anon_vma_chain", shape="box",
                                  style="rounded")
            graph.edge(av_name, avc_name, label="rb_root")
            graph.edge(avc_name, vma_name, label="vma")
        if vma.anon_vma is not None and vma.anon_vma is not folio.anon_vma:
            graph.edge(vma_name, f"anon_vma_{vma.anon_vma.id}", label="vma->anon_vma", style="dashed",
                       constraint="false")
        graph.node(f"mm_{mm}", f"mm {mm}\n(process {mm})", shape="box")
        graph.edge(vma_name, f"mm_{mm}", label="vm_mm")
    for av_id in sorted(drawn):
        parent = drawn[av_id].parent
        if parent is not None and parent.id in drawn:
            graph.edge(f"anon_vma_{av_id}", f"anon_vma_{parent.id}", label="parent", style="dotted",
                       constraint="false")
    return graph.source()
