"""The kernel-global state a model function reaches without being handed it, the way kernel
code reaches ``current``, the vm_event counters or the LRU: the Machine whose syscall is
running. ``Machine`` sets it on every facade call.

``kernel`` reads the running Machine's profile, so version-dependent code says
``if kernel.pmd_lazyfree_discard:``, which is also what mmlab.kernels uses to show one
function as each profile runs it.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field


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


@dataclass(frozen=True)
class Event:
    """One modelled step: which kernel function, what it decided, and the folio's state after.

    ``folio`` is a snapshot (pfn, order, refcount, mapcount, flags) so that a replay shows
    the state as it was at this step, not as it is now.
    """

    seq: int
    function: str
    message: str
    folio: dict | None = None
    details: dict = field(default_factory=dict)

    def __str__(self):
        return f"{self.function}: {self.message}"

    def _repr_mimebundle_(self, include=None, exclude=None):
        from .viz import mimebundle  # a diagram in notebooks; imported late so the model needs no viz

        return mimebundle(self, include, exclude)


def trace(function: str, message: str, folio=None, **details) -> None:
    """Record a trace event on the running Machine (if it is tracing).

    With ``details``, ``message`` is a str.format() template over them, filled in only when
    the event is recorded: calls made once per PTE then cost nothing when tracing is off."""
    machine = current.machine
    if machine is None or not machine.tracing:
        return
    if details:
        message = message.format(**details)
    machine.trace.append(
        Event(len(machine.trace), function, message, folio_snapshot(folio) if folio else None, details)
    )


def folio_snapshot(folio) -> dict:
    from .include.mm_types import folio_entire_mapcount, folio_mapcount
    from .include.page_flags import flag_names

    return {
        "pfn": folio.pfn,
        "order": folio.order,
        "refcount": folio._refcount,
        "mapcount": folio_mapcount(folio),
        "entire_mapcount": folio_entire_mapcount(folio),
        "flags": flag_names(folio.flags),
        "lru": folio.lru,
    }
