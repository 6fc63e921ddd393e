"""Showing DOT text in a notebook: SVG drawn by graphviz-pure, or, where that program is
missing, the DOT source itself and one line on how to get it.

graphviz-pure (a dependency of mmlab, pinned to one release) is a port of Graphviz's
``dot`` with its own font metrics, so it writes the same bytes on every machine: the
drawings stored in the course notebooks are what nbval gets back anywhere, whether or not
the machine has a Graphviz of its own (which mmlab does not use).
benchmarks/diagram-renderers.md says why this one and what the alternatives measured.

Labels are laid out in Courier's metrics (``dot.FONT``) and shown in whichever common
monospace font the browser has (``MONOSPACE``): all of them advance about 0.6 em per
character, so a label fits its box whatever font draws it, which a proportional font
cannot promise. A wide drawing takes the notebook column's width (``FIT_WIDTH_PT``). The
drawing loses the XML prologue and the comment in which the renderer names its version.
Drawings are cached by their source: showing the same state again costs nothing.
"""

from __future__ import annotations

import functools
import re
import shutil
import subprocess
import sysconfig

PROGRAM = "graphviz-pure"

INSTALL_HINT = (
    "The graphviz-pure program that draws mmlab's diagrams was not found, so this is the diagram's DOT "
    "source. To draw it, install mmlab's dependencies again: pip install -e . (in the mmlab folder), "
    "or: pip install graphviz-pure"
)

# What the drawing asks the browser for, in place of the Courier its layout measured.
MONOSPACE = "Menlo,Consolas,'DejaVu Sans Mono','Liberation Mono','Courier New',monospace"

# A drawing wider than this (in points; 720 px) takes the width of the notebook column
# instead of its own, so it never runs past the column's edge (JupyterLab shows SVG output
# as an image it does not shrink). Narrower drawings keep their size, not blown up.
FIT_WIDTH_PT = 540
_SIZE = re.compile(r'<svg width="([0-9.]+)pt" height="[0-9.]+pt"')


class GraphvizMissing(RuntimeError):
    """Raised by ``svg()`` when graphviz-pure is not installed."""


def program() -> str | None:
    """graphviz-pure's executable: the one installed beside this Python, else one on PATH.

    A notebook kernel may run the virtual environment's Python without that environment's
    scripts folder on PATH, so that folder is looked at first.
    """
    return shutil.which(PROGRAM, path=sysconfig.get_path("scripts")) or shutil.which(PROGRAM)


@functools.lru_cache(maxsize=128)
def svg(source: str) -> str:
    """The SVG drawing of ``source``: the ``<svg>`` element alone, ready to inline.

    Raises GraphvizMissing without graphviz-pure, and ValueError when ``source`` is not
    valid DOT (a bug in whatever wrote it).
    """
    executable = program()
    if executable is None:
        raise GraphvizMissing(INSTALL_HINT)
    drawn = subprocess.run([executable, "-Tsvg"], input=source, capture_output=True, text=True, encoding="utf-8")
    if drawn.returncode != 0:
        raise ValueError(f"{PROGRAM} could not draw this DOT text: {drawn.stderr.strip()}\n{source}")
    out = drawn.stdout
    out = out[out.index("<svg"):].replace('font-family="Courier,monospace"', f'font-family="{MONOSPACE}"')
    return _SIZE.sub(_fit, out, count=1)


def _fit(size: re.Match) -> str:
    """The ``<svg`` start tag's size: its own, or the column's width when it is wider than
    FIT_WIDTH_PT (the viewBox keeps its proportions)."""
    return '<svg width="100%"' if float(size.group(1)) > FIT_WIDTH_PT else size.group(0)


def html(source: str) -> str:
    """The diagram as HTML for a widget: inline SVG, or the source and the install hint."""
    try:
        return svg(source)
    except GraphvizMissing:
        from .dot import esc

        return f"<p>{esc(INSTALL_HINT)}</p><pre>{esc(source)}</pre>"


class Diagram:
    """A diagram of model state. ``source`` is its DOT text; in a notebook it shows itself
    as SVG, or as its source and how to install graphviz-pure when that is missing."""

    def __init__(self, source: str, title: str):
        self.source = source
        self.title = title

    def __repr__(self):
        return f"<Diagram: {self.title}>"

    def svg(self) -> str:
        """The drawing as SVG text; raises GraphvizMissing without graphviz-pure."""
        return svg(self.source)

    def _repr_mimebundle_(self, include=None, exclude=None):
        try:
            return {"image/svg+xml": self.svg(), "text/plain": repr(self)}
        except GraphvizMissing:
            return {"text/plain": f"{INSTALL_HINT}\n{self.source}"}
