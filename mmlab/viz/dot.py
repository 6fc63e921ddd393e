"""Writing DOT text that depends on nothing but the model state it shows.

``Graph`` keeps nodes and edges in the order they are added and writes attributes sorted
by name, so the same state, walked in the same order, gives byte-identical text. Node
names come from model identities (PFNs, mm ids, VMA start addresses, anon_vma ids), never
from ``id()``. Labels are Graphviz HTML-like tables built with ``table`` and ``row``.
"""

from __future__ import annotations

import html

FONT = "Courier"  # monospace metrics: see render.MONOSPACE
MAX_SIZE = "10,40"  # inches: a wider drawing is scaled down to fit a notebook column

# Fill colours for the states a learner should spot at a glance.
COLOURS = {
    "lazyfree": "#d5f0d5",  # anon, not swap-backed: reclaim may drop it
    "dirty": "#ffe2b8",
    "mlocked": "#e4d7f5",
    "zero": "#e8e8e8",  # the zero page and the huge zero page
    "anon": "#dde9f7",
    "header": "#f2f2f2",
    "changed": "#fff1a0",  # a field that changed in this step
    "empty": "#ffffff",
}


def quote(text: str) -> str:
    """A DOT double-quoted string."""
    return '"' + str(text).replace("\\", "\\\\").replace('"', '\\"') + '"'


def esc(text) -> str:
    """Text for an HTML-like label cell."""
    return html.escape(str(text), quote=False)


def cell(text: str, *, port: str | None = None, colour: str | None = None, bold: bool = False,
         align: str = "left", span: int = 1) -> str:
    """One ``<td>``; ``text`` is escaped here, and its newlines break the line."""
    attrs = f' align="{align}"' + (f' balign="{align}"' if "\n" in str(text) else "")
    if port:
        attrs += f' port="{port}"'
    if colour:
        attrs += f' bgcolor="{colour}"'
    if span > 1:
        attrs += f' colspan="{span}"'
    body = esc(text).replace("\n", "<br/>") if text != "" else " "
    return f"<td{attrs}>{'<b>' + body + '</b>' if bold else body}</td>"


def row(*cells: str) -> str:
    return "<tr>" + "".join(cells) + "</tr>"


def table(title: str, rows: list[str], *, colour: str | None = None, width: int = 1) -> str:
    """An HTML-like label: a bold title row spanning ``width`` columns, then ``rows``."""
    head = row(cell(title, bold=True, colour=colour or COLOURS["header"], align="center", span=width))
    return '<<table border="0" cellborder="1" cellspacing="0" cellpadding="3">' + head + "".join(rows) + "</table>>"


def _attrs(attrs: dict) -> str:
    parts = []
    for key in sorted(attrs):
        value = attrs[key]
        text = value if isinstance(value, str) and value.startswith("<<") else quote(value)
        parts.append(f"{key}={text}")
    return " [" + ", ".join(parts) + "]" if parts else ""


class Graph:
    """A digraph assembled in a fixed order. Adding a node twice keeps the first one."""

    def __init__(self, name: str, **attrs):
        self.name = name
        self.attrs = {"rankdir": "LR", "fontname": FONT, "fontsize": "11", "size": MAX_SIZE,
                      "ranksep": "0.35", **attrs}
        self._nodes: dict[str, str] = {}
        self._edges: list[str] = []
        self._extra: list[str] = []

    def __contains__(self, node: str) -> bool:
        return node in self._nodes

    def node(self, name: str, label: str, **attrs) -> str:
        if name not in self._nodes:
            self._nodes[name] = f"  {quote(name)}{_attrs({'label': label, **attrs})};"
        return name

    def edge(self, tail: str, head: str, **attrs) -> None:
        self._edges.append(f"  {_endpoint(tail)} -> {_endpoint(head)}{_attrs(attrs)};")

    def same_rank(self, *names: str) -> None:
        self._extra.append("  { rank=same; " + " ".join(quote(n) + ";" for n in names) + " }")

    def source(self) -> str:
        lines = [f"digraph {quote(self.name)} {{"]
        lines += [f"  graph{_attrs(self.attrs)};",
                  f'  node [fontname={quote(FONT)}, fontsize="10", shape="plaintext"];',
                  f'  edge [fontname={quote(FONT)}, fontsize="9"];']
        lines += list(self._nodes.values()) + self._edges + self._extra
        return "\n".join(lines) + "\n}\n"


def _endpoint(name: str) -> str:
    """``node`` or ``node:port`` (a port of an HTML-like label)."""
    node, _, port = name.partition(":")
    return quote(node) + (f":{quote(port)}" if port else "")


def span_text(first: int, last: int) -> str:
    """``5`` or ``0-511``."""
    return str(first) if first == last else f"{first}-{last}"


def runs(values: list) -> list[tuple[int, int, object]]:
    """Runs of equal consecutive values: (first index, last index, value)."""
    out: list[tuple[int, int, object]] = []
    for i, value in enumerate(values):
        if out and out[-1][2] == value:
            out[-1] = (out[-1][0], i, value)
        else:
            out.append((i, i, value))
    return out
