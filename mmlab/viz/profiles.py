"""A model function as two kernel profiles run it, as HTML: a unified diff
(``kernels.profile_diff``) or the two sources side by side, headed by the upstream changes
that make the difference (``kernels.changes_between``).

Only the switches the function itself reads are cited as its changes; the others that
differ between the two profiles are listed apart, since they change other functions.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import pkgutil

from ..kernels import PROFILES, changes_between, modelled_source, profile_diff, switches_read
from .dot import esc

# The model's packages: their functions may read a profile switch (``if kernel.X:``).
MODEL_PACKAGES = ("mmlab.include", "mmlab.mm")

ADDED, REMOVED, HUNK = "#e6ffec", "#ffebe9", "#ddf4ff"
MONO = "font-family: monospace; font-size: 12px; white-space: pre"
# Side by side, each source gets half the width and its long lines wrap, so the two fit in
# a notebook column however long the model's lines are.
WRAPPED = "font-family: monospace; font-size: 12px; white-space: pre-wrap; overflow-wrap: anywhere"
NUMBER_WIDTH = "3.5em"


def switched_functions() -> dict[str, object]:
    """Every model function that reads a profile switch, by name (sorted)."""
    found = {}
    modules = [f"{package}.{info.name}" for package in MODEL_PACKAGES
               for info in pkgutil.iter_modules(importlib.import_module(package).__path__)]
    for module in map(importlib.import_module, modules):
        for name, func in inspect.getmembers(module, inspect.isfunction):
            if func.__module__ == module.__name__ and switches_read(func):
                found[name] = func
    return dict(sorted(found.items()))


def function_named(function):
    """A model function, given itself or its name."""
    if callable(function):
        return function
    functions = switched_functions()
    if function not in functions:
        raise ValueError(f"no model function {function!r} reads a profile switch; choose one of: "
                         f"{', '.join(functions)} (or pass any model function itself)")
    return functions[function]


def _change_items(changes) -> str:
    items = []
    for switch, in_a, in_b, change in changes:
        note = f" <i>{esc(change.note)}</i>" if change.note else ""
        items.append(f"<li><code>{esc(switch)}</code> {'on' if in_a else 'off'} &rarr; {'on' if in_b else 'off'}: "
                     f"&ldquo;{esc(change.title)}&rdquo; ({esc(change.ref)}){note}</li>")
    return "<ul>" + "".join(items) + "</ul>"


def changes_html(func, a: str, b: str) -> str:
    """The changes between profiles ``a`` and ``b``: those ``func`` reads, then the others."""
    reads = set(switches_read(func))
    changes = changes_between(a, b)
    own = [c for c in changes if c[0] in reads]
    other = [c for c in changes if c[0] not in reads]
    parts = []
    if own:
        parts.append(f"<p>Changes between {esc(a)} and {esc(b)} in <code>{esc(func.__name__)}</code>:</p>"
                     + _change_items(own))
    else:
        parts.append(f"<p><code>{esc(func.__name__)}</code> runs the same code in {esc(a)} and {esc(b)}: "
                     "none of the changes between them is in it.</p>")
    if other:
        parts.append("<p>Other changes between them, elsewhere in the model:</p>" + _change_items(other))
    return "".join(parts)


def _unified(func, a: str, b: str) -> str:
    lines = [line for line in profile_diff(func, a, b).splitlines() if not line.startswith("# ")]  # its header
    out = []
    for line in filter(None, lines):
        colour = {"+": ADDED, "-": REMOVED, "@": HUNK}.get(line[:1])
        if line.startswith(("+++", "---")):
            colour = None
        style = f' style="background: {colour}"' if colour else ""
        out.append(f"<span{style}>{esc(line)}</span>")
    return f'<div style="{MONO}; overflow-x: auto">' + "\n".join(out) + "</div>" if out else ""


def _side_by_side(func, a: str, b: str) -> str:
    left, right = modelled_source(func, a).splitlines(), modelled_source(func, b).splitlines()
    rows = []

    def line(number, text, colour):
        style = f"{WRAPPED}; text-align: left; vertical-align: top" + (f"; background: {colour}" if colour else "")
        shown = "" if number is None else str(number + 1)
        return (f'<td style="{style}; color: #888">{shown}</td>'
                f'<td style="{style}">{esc(text) if text is not None else ""}</td>')

    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, left, right, autojunk=False).get_opcodes():
        for k in range(max(i2 - i1, j2 - j1)):
            li, rj = i1 + k, j1 + k
            lhs = line(li, left[li], None if tag == "equal" else REMOVED) if li < i2 else line(None, None, None)
            rhs = line(rj, right[rj], None if tag == "equal" else ADDED) if rj < j2 else line(None, None, None)
            rows.append(f"<tr>{lhs}{rhs}</tr>")
    head = (f'<tr><th colspan="2" style="text-align: left">{esc(func.__name__)} in {esc(a)}</th>'
            f'<th colspan="2" style="text-align: left">{esc(func.__name__)} in {esc(b)}</th></tr>')
    columns = f'<colgroup><col style="width: {NUMBER_WIDTH}"><col><col style="width: {NUMBER_WIDTH}"><col></colgroup>'
    return ('<table style="border-collapse: collapse; table-layout: fixed; width: 100%">' + columns + head
            + "".join(rows) + "</table>")


def profile_diff_html(function, a: str, b: str, *, side_by_side: bool = False) -> str:
    """``function`` (a model function or its name) as profiles ``a`` and ``b`` run it, as
    HTML: the changes that make the difference, then a unified diff or both sources."""
    func = function_named(function)
    for name in (a, b):
        if name not in PROFILES:
            raise ValueError(f"unknown kernel profile {name!r}; choose one of: {', '.join(PROFILES)}")
    body = _side_by_side(func, a, b) if side_by_side else _unified(func, a, b)
    return f"<div>{changes_html(func, a, b)}{body}</div>"


class ProfileDiffWidget:
    """Dropdowns for a function and two profiles, and a choice of view, over the diff."""

    def __init__(self, function: str = "try_to_unmap_one", a: str = "6.10", b: str = "6.11"):
        import ipywidgets as widgets

        function_named(function)
        names = list(PROFILES)
        self.function = widgets.Dropdown(options=list(switched_functions()), value=function, description="function")
        self.a = widgets.Dropdown(options=names, value=a, description="from")
        self.b = widgets.Dropdown(options=names, value=b, description="to")
        self.view = widgets.ToggleButtons(options=["unified", "side by side"], value="unified")
        self.output = widgets.HTML()
        for control in (self.function, self.a, self.b, self.view):
            control.observe(lambda _: self._draw(), "value")
        self.box = widgets.VBox([widgets.HBox([self.function, self.a, self.b]), self.view, self.output])
        self._draw()

    def _draw(self) -> None:
        self.output.value = profile_diff_html(self.function.value, self.a.value, self.b.value,
                                              side_by_side=self.view.value == "side by side")

    def _repr_mimebundle_(self, include=None, exclude=None):
        return self.box._repr_mimebundle_(include=include, exclude=exclude)


def profile_diff_widget(function: str = "try_to_unmap_one", a: str = "6.10", b: str = "6.11") -> ProfileDiffWidget:
    return ProfileDiffWidget(function, a, b)
