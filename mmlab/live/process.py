"""``Process``: the notebook's handle on one live process (a server, mmlab.live.server).

Every facade call is one request to the server, which makes the syscall in its own
address space. A crash there ends that process only; the handle then raises
``LiveProcessDied`` and the notebook carries on.
"""

from __future__ import annotations

import os
import select
import socket
import subprocess
import sys
import time
from pathlib import Path

from ..proc import PageInfo, Smaps
from ..uapi import PAGE_SIZE, PROT_READ, PROT_WRITE, SegmentationFault
from . import channel
from .server import LAB_LIMIT, LabSafetyError

REPLY_TIMEOUT = 300.0  # seconds; reclaiming 1 GiB of 4 KiB pages takes well under one
_PACKAGE_PARENT = str(Path(__file__).resolve().parents[2])


class LiveProcessDied(RuntimeError):
    """The live process ended without being asked to (a crash, or killed from outside)."""


def spawn_server() -> tuple[socket.socket, dict, subprocess.Popen]:
    """Start a server in a fresh interpreter; return its socket, its hello and the Popen."""
    ours, theirs = socket.socketpair()
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [_PACKAGE_PARENT, env.get("PYTHONPATH")]))
    popen = subprocess.Popen(
        [sys.executable, "-c", "from mmlab.live.server import main; main()", str(theirs.fileno())],
        pass_fds=[theirs.fileno()],
        stdin=subprocess.DEVNULL,
        env=env,
    )
    theirs.close()
    ours.settimeout(REPLY_TIMEOUT)
    try:
        hello = channel.recv(ours)
    except channel.ChannelClosed:
        raise LiveProcessDied(f"the live server failed to start (exit status {popen.wait()})") from None
    return ours, hello, popen


def _exit_waiter(pid: int):
    """A function that returns once process ``pid`` (not our child: a forked live process
    is its server's child) has exited. A pidfd (Linux 5.3+) becomes readable at exit, after
    the kernel has released the process's memory; without one, poll until it is gone."""
    try:
        pidfd = os.pidfd_open(pid)
    except OSError:
        pidfd = None

    def wait_exit():
        if pidfd is not None:
            select.select([pidfd], [], [], REPLY_TIMEOUT)
            os.close(pidfd)
            return
        deadline = time.monotonic() + REPLY_TIMEOUT
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.001)

    return wait_exit


class Pin:
    """The pages of a range pinned for DMA until ``release()``: registered as an io_uring
    fixed buffer, which pins them with pin_user_pages(FOLL_WRITE | FOLL_LONGTERM)."""

    def __init__(self, process: Process, pin_id: int):
        self.process, self.pin_id, self.released = process, pin_id, False

    def release(self) -> None:
        if not self.released:
            self.process._call("unpin", self.pin_id)
            self.released = True


class Process:
    """One live process; the methods are the facade's (mmlab.backend.Process)."""

    def __init__(self, machine, sock: socket.socket, pid: int, wait_exit):
        self.machine = machine
        self.pid = pid
        self.mapped = 0  # bytes the lab has mapped in this process
        self.alive = True
        self.exited = False  # ended by exit(), as opposed to dying
        self._sock = sock
        self._wait_exit = wait_exit

    def __repr__(self):
        state = "alive" if self.alive else "exited"
        return f"<live Process pid={self.pid} {state}, {self.mapped >> 20} MiB mapped>"

    def _call(self, name: str, *args, fd: int | None = None):
        """Send one request (and ``fd`` after it, for fork) and return the result."""
        if self.exited:
            raise ProcessLookupError(f"process {self.pid} has exited; spawn() or fork() a new one")
        if not self.alive:
            raise LiveProcessDied(f"live process {self.pid} died earlier; spawn() a new one")
        try:
            channel.send(self._sock, (name, args))
            if fd is not None:
                channel.send_fd(self._sock, fd)
            reply = channel.recv(self._sock)
        except (channel.ChannelClosed, ConnectionError):
            self._gone()
            raise LiveProcessDied(f"live process {self.pid} died during {name}(); the notebook is unharmed") from None
        kind = reply[0]
        if kind == "ok":
            self.mapped = reply[2]
            return reply[1]
        if kind == "oserror":
            raise OSError(reply[1], reply[2])
        if kind == "refused":
            raise LabSafetyError(reply[1])
        if kind == "segv":
            raise SegmentationFault(reply[1])
        raise RuntimeError(f"live process {self.pid} hit a bug in the lab during {name}():\n{reply[1]}")

    def _gone(self) -> None:
        self.alive = False
        self.mapped = 0
        self._sock.close()
        self._wait_exit()
        self.machine._forget(self)

    # -- the facade ---------------------------------------------------------------------

    def mmap(self, length: int, prot: int = PROT_READ | PROT_WRITE) -> int:
        """Private anonymous mapping, 2 MiB aligned; returns its address."""
        if self.machine.mapped + length > LAB_LIMIT:
            raise LabSafetyError(
                f"mapping {length >> 20} MiB more would exceed the live lab's limit of "
                f"{LAB_LIMIT >> 20} MiB across its processes; munmap or exit something first"
            )
        return self._call("mmap", length, prot)

    def munmap(self, addr: int, length: int) -> None:
        self._call("munmap", addr, length)

    def madvise(self, addr: int, length: int, advice: int) -> None:
        self._call("madvise", addr, length, advice)

    def mlock(self, addr: int, length: int) -> None:
        self._call("mlock", addr, length)

    def mlock2(self, addr: int, length: int, flags: int = 0) -> None:
        self._call("mlock2", addr, length, flags)

    def munlock(self, addr: int, length: int) -> None:
        self._call("munlock", addr, length)

    def mprotect(self, addr: int, length: int, prot: int) -> None:
        self._call("mprotect", addr, length, prot)

    def mremap(self, addr: int, old_length: int, new_length: int, flags: int = 0, new_addr: int = 0) -> int:
        """mremap(): returns where the mapping now is (MREMAP_MAYMOVE, MREMAP_FIXED)."""
        return self._call("mremap", addr, old_length, new_length, flags, new_addr)

    def mlockall(self, flags: int) -> None:
        """mlockall(): locks the whole live process, the interpreter's memory included."""
        self._call("mlockall", flags)

    def munlockall(self) -> None:
        self._call("munlockall")

    def write(self, addr: int, length: int = PAGE_SIZE, value: int = 1) -> None:
        """Store ``value`` (0-255) in every byte of [addr, addr + length), with memset."""
        if not 0 <= value <= 255:
            raise ValueError(f"value must be a byte (0-255), got {value}")
        self._call("write", addr, length, value)

    def read(self, addr: int) -> int:
        return self._call("read", addr)

    def pin(self, addr: int, length: int = PAGE_SIZE) -> Pin:
        return Pin(self, self._call("pin", addr, length))

    def fork(self) -> Process:
        if self.machine.mapped + self.mapped > LAB_LIMIT:
            raise LabSafetyError(
                f"fork would put {(self.machine.mapped + self.mapped) >> 20} MiB under the lab, "
                f"over its limit of {LAB_LIMIT >> 20} MiB; munmap something first"
            )
        ours, theirs = socket.socketpair()
        ours.settimeout(REPLY_TIMEOUT)
        try:
            pid = self._call("fork", fd=theirs.fileno())
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        child = Process(self.machine, ours, pid, _exit_waiter(pid))
        child.mapped = self.mapped
        self.machine._adopt(child)
        return child

    def exit(self) -> None:
        """End the process; returns once the kernel has torn down its memory."""
        if self.alive:
            try:
                self._call("exit")
            except LiveProcessDied:
                return
            self._gone()
            self.exited = True

    def smaps(self) -> Smaps:
        """The lab's VMAs of this process (the server's interpreter memory is left out)."""
        return self._call("smaps")

    def pagemap(self, addr: int, length: int) -> list[PageInfo]:
        return [PageInfo(*fields) for fields in self._call("pagemap", addr, length)]

    def thp_map(self, addr: int, length: int) -> str:
        return self._call("thp_map", addr, length)

    # -- live only ----------------------------------------------------------------------

    def timed_madvise(self, addr: int, length: int, advice: int) -> tuple[float, float]:
        """madvise, returning how long the syscall took, timed in the process: (wall-clock
        seconds, CPU seconds)."""
        return self._call("timed_madvise", addr, length, advice)
