"""The scenario explorer: system calls on a few processes, and after each one the page
tables, smaps and the /proc/vmstat deltas it caused.

``Explorer`` holds the state and is plain Python (testable without a front end); it makes
every call through ``scenarios.Run``, so calls are described, and errors recorded, the way
the named scenarios do it. ``ExplorerWidget`` is the thin ipywidgets layer: a kernel
selector, a process selector, offset/length/value fields and one button per action.
Choosing another kernel replays the actions so far on a fresh machine running it.
"""

from __future__ import annotations

from dataclasses import dataclass

from .. import scenarios
from ..kernels import PROFILES, get_profile
from ..machine import Machine
from ..uapi import (
    MADV_COLD,
    MADV_DONTNEED,
    MADV_FREE,
    MADV_HUGEPAGE,
    MADV_NOHUGEPAGE,
    MADV_PAGEOUT,
    MLOCK_ONFAULT,
    PAGE_SIZE,
    PROT_READ,
    PROT_WRITE,
    MiB,
)
from .dot import esc
from .pagetables import page_tables_dot, slot_chars
from .render import Diagram

_ADVICE = {"MADV_HUGEPAGE": MADV_HUGEPAGE, "MADV_NOHUGEPAGE": MADV_NOHUGEPAGE, "MADV_FREE": MADV_FREE,
           "MADV_DONTNEED": MADV_DONTNEED, "MADV_COLD": MADV_COLD, "MADV_PAGEOUT": MADV_PAGEOUT}

# The buttons, in the order the widget shows them.
ACTIONS = ("write", "read", *_ADVICE, "mlock", "mlock onfault", "munlock", "read-only", "read-write", "munmap",
           "pin", "unpin", "fork", "exit", "reclaim")


@dataclass(frozen=True)
class Action:
    """One button press: ``name`` (a key of ACTIONS) on process ``pid`` (None: the first
    one still running), over [offset, offset + length) of the region (length None: to the
    region's end). ``value`` is the byte ``write`` stores."""

    name: str
    pid: int | None = None
    offset: int = 0
    length: int | None = None
    value: int = 1


@dataclass(frozen=True)
class Outcome:
    """What one action did: the call as written, its error (an errno name or "SIGSEGV")
    or None, the value it returned if it reads, the vmstat deltas and the trace events."""

    pid: int
    call: str
    error: str | None
    value: object
    vmstat: dict
    events: tuple

    def __str__(self):
        result = self.error or (f"= {self.value}" if self.value is not None else "ok")
        return f"process {self.pid}: {self.call} -> {result}"


class Explorer:
    """A machine running ``kernel`` with one process that mapped a region of ``size``
    (advised MADV_HUGEPAGE when ``huge``), then ran ``actions``."""

    def __init__(self, kernel: str = "6.11", size: int = 8 * MiB, *, huge: bool = True, actions=()):
        get_profile(kernel)
        if size <= 0 or size % PAGE_SIZE:
            raise ValueError(f"size must be a positive multiple of {PAGE_SIZE} bytes, not {size}")
        self.size, self.huge = size, huge
        self.history: list[Action] = []
        self._boot(kernel)
        for action in actions:
            self.do(action)

    def _boot(self, kernel: str) -> None:
        self.kernel = kernel
        self.machine = Machine(kernel)
        self.run = scenarios.Run(self.machine)
        first = self.run.spawn()
        self.addr = self.run.region(first, self.size, huge=self.huge, watch=None)
        self.processes = [first]
        self.pins: dict[int, list] = {}
        self.outcomes: list[Outcome] = []

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.processes]

    def process(self, pid: int | None = None):
        """A running process by pid (None: the first)."""
        if not self.processes:
            raise ValueError("every process has exited: make a new Explorer (or choose another kernel to replay)")
        if pid is None:
            return self.processes[0]
        for p in self.processes:
            if p.pid == pid:
                return p
        raise ValueError(f"no running process {pid}; running: {', '.join(map(str, self.pids))}")

    def _call(self, name: str, p, addr: int, length: int, value: int) -> tuple:
        """The method that action ``name`` calls, then its arguments."""
        if name in _ADVICE:
            return p.madvise, addr, length, _ADVICE[name]
        if name == "unpin":
            pins = self.pins.get(p.pid)
            if not pins:
                raise ValueError(f"process {p.pid} holds no pin: press pin first")
            return (pins.pop().release,)
        return {
            "write": (p.write, addr, length, value),
            "read": (p.read, addr),
            "mlock": (p.mlock, addr, length),
            "mlock onfault": (p.mlock2, addr, length, MLOCK_ONFAULT),
            "munlock": (p.munlock, addr, length),
            "read-only": (p.mprotect, addr, length, PROT_READ),
            "read-write": (p.mprotect, addr, length, PROT_READ | PROT_WRITE),
            "munmap": (p.munmap, addr, length),
            "pin": (p.pin, addr, length),
            "fork": (p.fork,),
            "exit": (p.exit,),
            "reclaim": (self.machine.reclaim,),
        }[name]

    def do(self, action: Action | str, **fields) -> Outcome:
        """Make one call, record it in the history, and return its Outcome. ``action`` is an
        Action or an action name with the Action fields as keywords."""
        if isinstance(action, str):
            action = Action(action, **fields)
        if action.name not in ACTIONS:
            raise ValueError(f"unknown action {action.name!r}; choose one of: {', '.join(ACTIONS)}")
        if not 0 <= action.offset < self.size:
            raise ValueError(f"offset {action.offset:#x} is outside the region: it must be at least 0 and less than "
                             f"its size, {self.size:#x}")
        process = self.process(action.pid)
        length = self.size - action.offset if action.length is None else action.length
        call, *args = self._call(action.name, process, self.addr + action.offset, length, action.value)
        first_event = len(self.machine.trace)
        result = self.run.step(action.name, call, *args)
        record = self.run.steps[-1]
        self.history.append(action)
        if record["outcome"] is None:
            self._note(action.name, process, result)
        outcome = Outcome(process.pid, record["call"], record["outcome"], record["value"],
                          {k: v for k, v in record["vmstat"].items() if v}, tuple(self.machine.trace[first_event:]))
        self.outcomes.append(outcome)
        return outcome

    def _note(self, name: str, process, result) -> None:
        """Keep track of the processes and pins an action made or ended."""
        if name == "fork":
            self.processes.append(result)
        elif name == "exit":
            self.processes.remove(process)
        elif name == "pin":
            self.pins.setdefault(process.pid, []).append(result)

    def set_kernel(self, kernel: str) -> None:
        """Start again on a machine running ``kernel`` and replay every action so far. An
        action that no longer applies there (an unpin whose pin failed, a process that is
        not running) is left out of the new history."""
        get_profile(kernel)
        history = self.history
        self.history = []
        self._boot(kernel)
        for action in history:
            try:
                self.do(action)
            except ValueError:
                continue

    def page_tables_dot(self, pid: int | None = None) -> str:
        return page_tables_dot(self.process(pid), self.addr, self.size)

    def page_tables(self, pid: int | None = None) -> Diagram:
        p = self.process(pid)
        return Diagram(self.page_tables_dot(pid), f"page tables of process {p.pid} over the region")

    def smaps(self, pid: int | None = None) -> dict[str, int]:
        """The process's smaps fields over the region that are not zero (kB)."""
        totals = self.process(pid).smaps().range(self.addr, self.size)
        return {name: kb for name, kb in totals.items() if kb}

    def thp_map(self, pid: int | None = None) -> str:
        return slot_chars(self.process(pid), self.addr, self.size)


# ---------------------------------------------------------------- the widget


def _kv_table(title: str, values: dict, unit: str = "") -> str:
    rows = "".join(f"<tr><td>{esc(k)}</td><td style='text-align: right'>{esc(v)}{unit}</td></tr>"
                   for k, v in values.items()) or "<tr><td colspan='2'>none</td></tr>"
    return f"<table><tr><th colspan='2' style='text-align: left'>{esc(title)}</th></tr>{rows}</table>"


def outcome_html(outcome: Outcome, max_decisions: int = 8) -> str:
    """The outcome line, then the kernel's decisions during the call (repeats folded)."""
    from .replay import Replay

    replay = Replay(outcome.events)
    decisions = replay.decisions()
    lines = []
    for first, count in decisions[:max_decisions]:
        event = replay.events[first]
        times = f" (x{count})" if count > 1 else ""
        lines.append(f"<li><code>{esc(event.function)}</code>: {esc(event.message)}{times}</li>")
    more = len(decisions) - max_decisions
    if more > 0:
        lines.append(f"<li>... {more} more</li>")
    return f"<p><b>{esc(str(outcome))}</b></p>" + (f"<ul>{''.join(lines)}</ul>" if lines else "")


class ExplorerWidget:
    """Buttons and fields over an Explorer; every press redraws the views."""

    def __init__(self, explorer: Explorer):
        import ipywidgets as widgets

        from .render import html

        self.explorer = explorer
        self._html = html
        self.kernel = widgets.Dropdown(options=list(PROFILES), value=explorer.kernel, description="kernel")
        self.process = widgets.Dropdown(options=explorer.pids, value=explorer.pids[0], description="process")
        self.offset = widgets.FloatText(value=0, description="offset MiB", step=0.5)
        self.length = widgets.FloatText(value=explorer.size / MiB, description="length MiB", step=0.5)
        self.value = widgets.BoundedIntText(value=1, min=0, max=255, description="write byte")
        self.buttons = {name: widgets.Button(description=name, layout=widgets.Layout(width="auto")) for name in ACTIONS}
        for name, button in self.buttons.items():
            button.on_click(lambda _, name=name: self.press(name))
        self.kernel.observe(lambda change: self._change_kernel(change["new"]), "value")
        self._syncing = False
        self.process.observe(lambda _: self._syncing or self._draw(), "value")
        self.outcome = widgets.HTML()
        self.diagram = widgets.HTML()
        self.smaps = widgets.HTML()
        self.vmstat = widgets.HTML()
        self.box = widgets.VBox([
            widgets.HBox([self.kernel, self.process]),
            widgets.HBox([self.offset, self.length, self.value]),
            widgets.HBox(list(self.buttons.values()), layout=widgets.Layout(flex_flow="row wrap")),
            self.outcome,
            widgets.HBox([self.smaps, self.vmstat]),
            self.diagram,
        ])
        self._draw()

    def press(self, name: str) -> None:
        """What a click on button ``name`` does: run the action with the fields' values."""
        action = Action(name, self.process.value, round(self.offset.value * MiB), round(self.length.value * MiB),
                        self.value.value)
        try:
            self.explorer.do(action)
        except ValueError as err:
            self.outcome.value = f"<p><b>{esc(err)}</b></p>"
            return
        self._draw()

    def _change_kernel(self, kernel: str) -> None:
        self.explorer.set_kernel(kernel)
        self._draw()

    def _draw(self) -> None:
        explorer = self.explorer
        pids = explorer.pids
        if list(self.process.options) != pids:
            keep = self.process.value if self.process.value in pids else (pids[0] if pids else None)
            self._syncing = True  # the process dropdown's observer must not redraw midway
            self.process.options = pids
            self.process.value = keep
            self._syncing = False
        if not pids:
            self.diagram.value = self.smaps.value = ""
            self.outcome.value = "<p><b>every process has exited</b></p>"
            return
        pid = self.process.value
        last = explorer.outcomes[-1] if explorer.outcomes else None
        self.outcome.value = outcome_html(last) if last else "<p>press a button to make a system call</p>"
        self.smaps.value = _kv_table(f"smaps of process {pid} over the region", explorer.smaps(pid), " kB")
        self.vmstat.value = _kv_table("vmstat deltas of the last call", last.vmstat if last else {})
        self.diagram.value = self._html(explorer.page_tables_dot(pid))

    def _repr_mimebundle_(self, include=None, exclude=None):
        return self.box._repr_mimebundle_(include=include, exclude=exclude)


def explorer_widget(kernel: str = "6.11", size: int = 8 * MiB, *, huge: bool = True, actions=()) -> ExplorerWidget:
    """The scenario explorer over a new Explorer (see Explorer for the arguments)."""
    return ExplorerWidget(Explorer(kernel, size, huge=huge, actions=actions))
