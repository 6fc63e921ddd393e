"""Diagrams and widgets over the mmlab model, for the course notebooks.

Diagrams. Each ``*_dot`` function turns model state into DOT text; each ``*_diagram``
wraps that text in a ``Diagram``, which a notebook shows as SVG (Graphviz's ``dot``), or,
without ``dot``, as the DOT source under one line on how to install Graphviz::

    from mmlab import Machine, MADV_FREE, MADV_HUGEPAGE, MiB
    from mmlab import viz

    m = Machine(kernel="6.11")
    p = m.spawn()
    a = p.mmap(8 * MiB)
    p.madvise(a, 8 * MiB, MADV_HUGEPAGE)
    p.write(a, 8 * MiB)
    folio = m.folios[0x100000]
    before = folio.snapshot()                # what a trace Event records
    p.madvise(a, 2 * MiB, MADV_FREE)
    viz.page_tables_diagram(p, a, 8 * MiB)   # PMD entries, PTE tables as runs, folios
    folio                                    # model objects display themselves: Folio,
    p; m                                     # Process (its page tables), Machine (its LRU)
    viz.rmap_diagram(folio)                  # folio -> anon_vma -> chain -> VMA -> mm
    viz.lru_diagram(m)
    viz.step_diagram(before, folio, "MADV_FREE")   # what changed, highlighted

The functions (all pure: the same state gives byte-identical DOT):

    page_tables_dot(process, addr=None, length=None, *, expand=4) -> str
    folio_dot(folio) -> str
    rmap_dot(folio) -> str
    lru_dot(machine) -> str
    step_dot(before, after, label="") -> str     # before/after: Event.folio snapshots or Folios
    slot_chars(process, addr, length) -> str     # == process.thp_map(addr, length), faster
    page_tables_diagram / folio_diagram / rmap_diagram / lru_diagram / step_diagram(...) -> Diagram
    Diagram(source, title): .source, .svg(), display; svg(source) -> str raises GraphvizMissing

Trace step-through, profile diffs and the scenario explorer::

    r = viz.Replay(m.trace)            # or Replay(events, functions={"try_to_unmap_one"})
    r.step(3)                          # (sentence, DOT) of step 3; also r.sentence(i), r.dot(i)
    viz.replay_widget(m)               # slider + previous/next/next-decision buttons
    viz.profile_diff_html("try_to_unmap_one", "6.10", "6.11", side_by_side=False) -> str (HTML;
                                       # show it with IPython.display.HTML(...))
    viz.profile_diff_widget("try_to_unmap_one", "6.10", "6.11")
    x = viz.Explorer("6.11", 8 * MiB, actions=["write", "MADV_FREE"])   # plain state, no widgets
    x.do("MADV_PAGEOUT", offset=0, length=2 * MiB)   # -> Outcome (call, error, vmstat, events)
    x.do("fork"); x.do("MADV_FREE", pid=1001)        # action names: viz.explorer.ACTIONS
    x.set_kernel("6.10")                             # replay the history on another kernel
    x.page_tables(pid), x.smaps(pid), x.thp_map(pid), x.pids, x.outcomes, x.machine
    viz.explorer_widget("6.11", 8 * MiB)           # buttons per syscall, kernel selector

For nbval. Diagrams and model objects display deterministically: ``text/plain`` is a repr
without memory addresses and ``image/svg+xml`` is the drawing without Graphviz's version
comment, so a compared cell passes wherever the same Graphviz lays it out (the course's CI
installs Debian's). To compare across Graphviz builds, display ``diagram.source`` (DOT
text) instead. Replay/profile-diff HTML strings are deterministic too. Widgets are not:
tag cells that display ``replay_widget``, ``profile_diff_widget`` or ``explorer_widget``
``nbval-ignore-output`` (their state lives in the front end, and the output nbval sees is
not what a browser shows).
"""

from .diagrams import (
    diagram_of,
    folio_diagram,
    lru_diagram,
    mimebundle,
    page_tables_diagram,
    rmap_diagram,
    step_diagram,
)
from .explorer import Action, Explorer, ExplorerWidget, Outcome, explorer_widget
from .folio import folio_dot, step_dot
from .lru import lru_dot
from .pagetables import page_tables_dot, slot_chars
from .profiles import ProfileDiffWidget, profile_diff_html, profile_diff_widget, switched_functions
from .render import INSTALL_HINT, Diagram, GraphvizMissing, svg
from .replay import Replay, ReplayWidget, replay_widget, trace_step
from .rmap import rmap_dot

__all__ = [
    "Action", "Diagram", "Explorer", "ExplorerWidget", "GraphvizMissing", "INSTALL_HINT", "Outcome",
    "ProfileDiffWidget", "Replay", "ReplayWidget", "diagram_of", "explorer_widget", "folio_diagram", "folio_dot",
    "lru_diagram", "lru_dot", "mimebundle", "page_tables_diagram", "page_tables_dot", "profile_diff_html",
    "profile_diff_widget", "replay_widget", "rmap_diagram", "rmap_dot", "slot_chars", "step_diagram", "step_dot",
    "svg", "switched_functions", "trace_step",
]
