"""The kernel-global state a model function reaches without being handed it, the way kernel
code reaches ``current``, the vm_event counters or the LRU: the Machine whose syscall is
running. ``Machine`` sets it on every facade call. And the trace: what each modelled step
decided, recorded on that Machine.

``kernel`` reads the running Machine's profile, so version-dependent code says
``if kernel.pmd_lazyfree_discard:``, which is also what mmlab.kernels uses to show one
function as each profile runs it.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import contextmanager
from functools import lru_cache
from string import Formatter


class _Current:
    machine = None


current = _Current()


@contextmanager
def running(machine):
    """Make ``machine`` the one model functions act on, for the duration of a syscall."""
    before = current.machine
    current.machine = machine
    kernel._run(machine.kernel)
    try:
        yield machine
    finally:
        current.machine = before
        kernel._run(before.kernel if before else None)


class _KernelProxy:
    """The running Machine's kernel profile. While a Machine runs, the profile's fields are
    copied onto the proxy, so ``kernel.X`` is a plain attribute read: some model loops read
    a switch once per PTE."""

    def _run(self, profile) -> None:
        self.__dict__.clear()
        if profile is not None:
            self.__dict__.update(vars(profile))

    def __getattr__(self, name):  # not a field, or no Machine running
        if current.machine is None:
            raise RuntimeError(f"kernel.{name} read while no Machine is running (use state.running(machine))")
        return getattr(current.machine.kernel, name)

    def __repr__(self):
        return repr(current.machine.kernel) if current.machine else "<no machine running>"


kernel = _KernelProxy()


def count_vm_events(name: str, nr: int = 1) -> None:
    """count_vm_events(): add to a /proc/vmstat counter."""
    current.machine.vmstat[name] += nr


def count_vm_event(name: str) -> None:
    current.machine.vmstat[name] += 1


class Event:
    """One modelled step: which kernel function, what it decided, and the folio's state after.

    ``folio`` is a snapshot (``Folio.snapshot()``: pfn, order, refcount, mapcount, flags, lru)
    so that a replay shows the state as it was at this step, not as it is now. ``message``,
    a str.format() template over ``details`` when there are any, is filled in when read.
    """

    __slots__ = ("seq", "function", "_message", "folio", "details")

    def __init__(self, seq: int, function: str, message: str, folio=None, details: dict | None = None):
        self.seq = seq
        self.function = function
        self._message = message
        self.folio = folio
        self.details = details or {}

    @property
    def message(self) -> str:
        return self._message.format(**self.details) if self.details else self._message

    def __str__(self):
        return f"{self.function}: {self.message}"

    def __repr__(self):
        return f"<Event {self.seq} {self}>"


class Trace(Sequence):
    """``Machine.trace``: the events recorded so far, oldest first, as a read-only sequence
    of Events (``clear()`` empties it). Recording one appends a tuple; its Event is made
    when it is read. A trace may hold an event per PTE of every THP reclaimed, so a record
    is made to cost Python's cyclic garbage collector nothing:

    * A record is one flat tuple of numbers and strings: the function, the message, how many
      values follow, the values, then (if the event is about a folio) the folio's
      ``Folio.snapshot_values()``, which ``snapshot`` (Machine passes FolioSnapshot) turns
      into ``Event.folio``. The collector stops tracking such a tuple; and one object per
      event, not three, means a third as many collections.
    * Records are kept in blocks of BLOCK, a full block as a tuple, which the collector also
      stops tracking: a full collection passes over a block, not each record.

    With a record of three objects, 6.10's reclaim took 0.93 s of its 4.5 s per 4 GiB in
    the collector, and that share grew with the size; with one, 0.28 s
    (benchmarks/reclaim_lazyfree.py).
    """

    BLOCK = 4096
    __slots__ = ("_blocks", "_filling", "_snapshot")

    def __init__(self, snapshot=tuple):
        self._blocks: list[tuple] = []
        self._filling: list[tuple] = []
        self._snapshot = snapshot

    def append(self, record: tuple) -> None:
        """Add one record (see the class's docstring)."""
        self._filling.append(record)
        if len(self._filling) == self.BLOCK:
            self._blocks.append(tuple(self._filling))
            self._filling.clear()

    def __len__(self) -> int:
        return len(self._blocks) * self.BLOCK + len(self._filling)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        seq = index + len(self) if index < 0 else index
        if not 0 <= seq < len(self):
            raise IndexError("trace index out of range")
        block, i = divmod(seq, self.BLOCK)
        function, message, n, *rest = self._blocks[block][i] if block < len(self._blocks) else self._filling[i]
        values, folio = rest[:n], rest[n:]
        details = dict(zip(template_fields(message), values, strict=True)) if values else None
        return Event(seq, function, message, self._snapshot(folio) if folio else None, details)

    def clear(self) -> None:
        self._blocks.clear()
        self._filling.clear()

    def __repr__(self):
        return f"<Trace of {len(self)} events>"


@lru_cache(maxsize=256)
def template_fields(message: str) -> tuple[str, ...]:
    """The named fields of a trace message template, in the order they first appear."""
    return tuple(dict.fromkeys(name for _, name, _, _ in Formatter().parse(message) if name))


def trace(function: str, message: str, folio=None, *values) -> None:
    """Record a trace event on the running Machine (if it is tracing).

    With ``values``, ``message`` is a str.format() template whose named fields take them in
    the order the fields first appear; they become the Event's ``details`` and fill in the
    message when it is read. Values are numbers or strings (a repr for an object: the
    event shows it as it was), so that the record stays a plain tuple (see Trace)."""
    machine = current.machine
    if machine is None or not machine.tracing:
        return
    snapshot = () if folio is None else folio.snapshot_values()
    machine.trace.append((function, message, len(values), *values, *snapshot))
