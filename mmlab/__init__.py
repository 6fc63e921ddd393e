"""mmlab: a small model of Linux memory management, built to teach the 2024 series
"Reclaim lazyfree THP without splitting" and what came after it.

The facade, shared by the model (``mmlab.Machine``) and the live lab
(``mmlab.live.Machine``), declared in ``mmlab.backend``::

    m = Machine(kernel="6.11")          # one of mmlab.PROFILES
    p = m.spawn()                       # a process with its own mm
    a = p.mmap(64 * MiB)                # private anonymous RW, 2 MiB aligned; returns the address
    p.madvise(a, 64 * MiB, MADV_HUGEPAGE)
    p.write(a + 10, 5000, value=7)      # bytes a+10 .. a+5009 become 7 (any offset and length)
    p.read(a + 10)                      # the byte there: 7, or 0 if never written or discarded
    p.madvise(a, 64 * MiB, MADV_FREE)
    p.mlock(a, 2 * MiB); p.mlock2(a, 2 * MiB, MLOCK_ONFAULT); p.munlock(a, 2 * MiB)
    p.mlockall(MCL_CURRENT | MCL_FUTURE); p.munlockall()   # live: locks the whole live process
    p.mprotect(a, 2 * MiB, PROT_READ); p.munmap(a, 2 * MiB)
    b = p.mremap(a, 2 * MiB, 2 * MiB, MREMAP_MAYMOVE | MREMAP_FIXED, c)   # move; returns the address
    p.madvise(a, 2 * MiB, MADV_COLLAPSE)   # make THPs now, by copying
    pin = p.pin(a, PAGE_SIZE); pin.release()   # pin_user_pages(FOLL_WRITE | FOLL_LONGTERM)
    child = p.fork(); child.exit()
    p.smaps()                           # mmlab.proc.Smaps; p.smaps()["LazyFree"] is the total in kB
    p.pagemap(a, 2 * MiB)               # list of mmlab.proc.PageInfo, one per 4 KiB page
    p.thp_map(a, 64 * MiB)              # "HHHH..." one character per 2 MiB (uapi.SLOT_LEGEND)
    m.vmstat                            # dict of /proc/vmstat counters (proc.VMSTAT_FIELDS)

Errors are the syscall's: ``OSError`` with the errno Linux returns, ``SegmentationFault``
for an access the mapping does not allow.

In a notebook, a Folio, Process, Machine or trace Event displays as its diagram: importing
mmlab registers that display with IPython, and the diagram code (mmlab.viz) is imported the
first time one is shown. The model itself never names the display layer.
"""

import sys

from . import uapi
from .uapi import *  # noqa: F403

__all__ = [name for name in dir(uapi) if not name.startswith("_")]

from .kernels import PROFILES, modelled_source, profile_diff  # noqa: E402
from .machine import Machine, Process  # noqa: E402

__all__ += ["Machine", "Process", "PROFILES", "modelled_source", "profile_diff", "register_display"]

# The model objects a notebook shows as diagrams: (module, class name).
DISPLAYED = (
    ("mmlab.include.mm_types", "Folio"),
    ("mmlab.machine", "Machine"),
    ("mmlab.machine", "Process"),
    ("mmlab.state", "Event"),
)


def _mimebundle(obj) -> dict:
    from .viz import mimebundle  # the first display pays for importing the diagrams

    return mimebundle(obj)


def register_display(display_formatter) -> None:
    """Have an IPython DisplayFormatter show model objects through mmlab.viz (registered by
    class name, so nothing is imported until an object is displayed)."""
    for module, name in DISPLAYED:
        display_formatter.mimebundle_formatter.for_type_by_name(module, name, _mimebundle)


def _register_with_running_ipython() -> None:
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    if shell is not None:
        register_display(shell.display_formatter)


_register_with_running_ipython()
