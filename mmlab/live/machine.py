"""``Machine``: the facade of mmlab.backend over the host kernel.

``Machine()`` is this computer; ``spawn()`` starts a live process (a server in a fresh
interpreter) whose address space the lab experiments on. ``vmstat`` reads /proc/vmstat,
which is global: other processes move it too, so scenarios bracket each step and repeat
runs (see mmlab.scenarios and mmlab.live.compare).
"""

from __future__ import annotations

import weakref

from . import env as _env
from . import procfs
from .process import Process, spawn_server
from .server import LAB_LIMIT


class Machine:
    """The host kernel, driven through the same calls as the model's ``mmlab.Machine``.

    Use it as a context manager (or call ``close()``) to end its processes; they also end
    when the notebook's kernel exits, because their sockets close.
    """

    limit = LAB_LIMIT

    def __init__(self):
        self.env = _env.probe()
        if not self.env.linux:
            raise _env.LiveUnavailable(self.env.lacking("linux"))
        self.kernel = self.env.release
        self._processes: list[Process] = []
        weakref.finalize(self, _exit_all, self._processes)

    def __repr__(self):
        return f"<live Machine {self.kernel}, {len(self._processes)} processes, {self.mapped >> 20} MiB mapped>"

    def spawn(self) -> Process:
        sock, hello, popen = spawn_server()
        process = Process(self, sock, hello["pid"], popen.wait)
        self._adopt(process)
        return process

    @property
    def vmstat(self) -> dict[str, int | None]:
        return procfs.read_vmstat()

    @property
    def processes(self) -> list[Process]:
        return list(self._processes)

    @property
    def mapped(self) -> int:
        """Bytes the lab has mapped, over all its live processes."""
        return sum(p.mapped for p in self._processes)

    def close(self) -> None:
        _exit_all(self._processes)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _adopt(self, process: Process) -> None:
        self._processes.append(process)

    def _forget(self, process: Process) -> None:
        if process in self._processes:
            self._processes.remove(process)


def _exit_all(processes: list[Process]) -> None:
    for process in list(reversed(processes)):
        process.exit()
