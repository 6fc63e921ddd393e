"""The live lab: the facade of mmlab.backend over the host's own Linux kernel.

    from mmlab.live import Machine
    with Machine() as m:
        p = m.spawn()               # a real process of its own, serving the lab's syscalls
        a = p.mmap(4 * MiB)
        ...

Each live process is a separate server process, so a crash or a leak there cannot hurt
the notebook. Only the lab's own mappings are touched, at most 1 GiB at a time, reclaim
happens only through MADV_PAGEOUT, and nothing is written to /proc/sys, /sys or cgroup
files. ``mmlab live`` (mmlab.live.cli) runs the scenarios, compares them with the model,
fingerprints the kernel and times reclaim; in a notebook,

    from mmlab.live.compare import format_rows, side_by_side
    print("\n".join(format_rows(side_by_side("lazyfree-reclaim", profile="6.11"))))

shows one scenario on a model profile and on this kernel, field by field.
"""

from .env import Environment, LiveUnavailable, probe
from .machine import Machine
from .process import LiveProcessDied, Pin, Process
from .server import LAB_LIMIT, LabSafetyError

__all__ = [
    "LAB_LIMIT",
    "Environment",
    "LabSafetyError",
    "LiveProcessDied",
    "LiveUnavailable",
    "Machine",
    "Pin",
    "Process",
    "probe",
]
