"""Diagrams of model state, ready to display: each ``*_diagram`` wraps the matching
``*_dot`` function's text in a ``Diagram``. ``diagram_of`` picks the diagram a model object
shows when a notebook displays it (``mimebundle``, which mmlab registers with IPython for them).
"""

from __future__ import annotations

from ..include.mm_types import Folio
from ..machine import Machine, Process
from ..state import Event
from .folio import folio_dot, folio_title, step_dot
from .lru import lru_dot
from .pagetables import model_mm, page_tables_dot, resolve_range
from .render import Diagram
from .rmap import rmap_dot


def page_tables_diagram(process, addr: int | None = None, length: int | None = None, *, expand: int = 4) -> Diagram:
    addr, length = resolve_range(model_mm(process), addr, length)
    title = f"page tables of process {process.pid}, {addr:#x} + {length:#x}"
    return Diagram(page_tables_dot(process, addr, length, expand=expand), title)


def folio_diagram(folio: Folio) -> Diagram:
    return Diagram(folio_dot(folio), folio_title(folio))


def rmap_diagram(folio: Folio) -> Diagram:
    return Diagram(rmap_dot(folio), f"reverse map of {folio_title(folio)}")


def lru_diagram(machine: Machine) -> Diagram:
    return Diagram(lru_dot(machine), f"LRU lists of the kernel {machine.kernel.name} machine")


def step_diagram(before, after, label: str = "") -> Diagram:
    return Diagram(step_dot(before, after, label), f"one step{': ' + label if label else ''}")


def diagram_of(obj) -> Diagram:
    """The diagram a model object shows itself as: a Folio its folio diagram, a Process its
    page tables, a Machine its LRU lists, a trace Event the folio state it recorded."""
    if isinstance(obj, Folio):
        return folio_diagram(obj)
    if isinstance(obj, Process):
        return page_tables_diagram(obj)
    if isinstance(obj, Machine):
        return lru_diagram(obj)
    if isinstance(obj, Event):
        return step_diagram(None, obj.folio, obj.function)
    raise TypeError(f"no diagram for {type(obj).__name__}: pass a Folio, Process, Machine or trace Event")


def mimebundle(obj, include=None, exclude=None) -> dict:
    """A model object's notebook display: its diagram, and its own repr as the plain text
    (without ``dot``, the diagram's DOT source and how to install Graphviz)."""
    bundle = diagram_of(obj)._repr_mimebundle_(include, exclude)
    if "image/svg+xml" in bundle:
        bundle["text/plain"] = repr(obj)
    return bundle
