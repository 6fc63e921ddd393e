"""The process behind one ``mmlab.live.Process``: it owns the address space the lab
experiments on and makes the syscalls there.

Started as ``python -c "from mmlab.live.server import main; main()" FD`` (a fresh
interpreter, so nothing of the notebook's state is inherited), it serves requests from
the socket FD until told to exit or until the socket closes. ``fork`` forks this server;
the new process serves a socket the notebook passed along with the request.

Safety rules enforced here, whatever the caller asks:

* only memory this server mapped for the lab (``mmap`` requests) is advised, locked,
  protected, remapped, unmapped, pinned, written or read (``mlockall`` locks the whole
  server process, which is this process's own memory and nothing else's); a range that reaches into anything else
  is refused with ``LabSafetyError``;
* at most ``LAB_LIMIT`` bytes are mapped for the lab at a time;
* reclaim happens only through ``MADV_PAGEOUT`` (the only reclaim a caller can request).

After every request that may change memory, the server drains this CPU's LRU and mlock
batches (an ``MADV_FREE`` of an untouched private page: madvise drains them first and the
page has nothing to free), so counters that the kernel batches per CPU, such as
``pglazyfree`` for small folios, show the step that caused them. The server is pinned to
one CPU so that the drain reaches the batches it filled.
"""

from __future__ import annotations

import errno
import os
import signal
import socket
import sys
import time
import traceback

from .. import proc
from ..uapi import (
    HPAGE_PMD_SIZE,
    MADV_COLD,
    MADV_DONTNEED,
    MADV_FREE,
    MADV_PAGEOUT,
    MREMAP_FIXED,
    PAGE_SIZE,
    PROT_NONE,
    PROT_READ,
    PROT_WRITE,
)
from . import channel, procfs, syscalls

LAB_LIMIT = 1 << 30  # at most 1 GiB mapped for the lab at a time


class LabSafetyError(ValueError):
    """A request the live lab refuses because it would touch memory that is not its own,
    or map more than the lab's limit."""


class WouldFault(Exception):
    """A load or store the server will not make because it would raise SIGSEGV."""


def _page_span(start: int, length: int) -> tuple[int, int]:
    return start - start % PAGE_SIZE, -(-(start + length) // PAGE_SIZE) * PAGE_SIZE


def _subtract(ranges: list[tuple[int, int]], start: int, end: int) -> list[tuple[int, int]]:
    out = []
    for s, e in ranges:
        if e <= start or end <= s:
            out.append((s, e))
            continue
        if s < start:
            out.append((s, start))
        if end < e:
            out.append((end, e))
    return out


def _maps() -> list[tuple[int, int, str]]:
    """(start, end, perms) of every VMA of this process, from /proc/self/maps."""
    vmas = []
    with open("/proc/self/maps") as f:
        for line in f:
            span, perms = line.split()[:2]
            start, end = (int(x, 16) for x in span.split("-"))
            vmas.append((start, end, perms))
    return vmas


class Server:
    """One live process's state: its lab mappings, its pins, and the page it drains with."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.lab: list[tuple[int, int]] = []  # [start, end) ranges mapped for the lab
        self.pins: dict[int, int] = {}  # pin id -> the io_uring fd that holds the pins
        self.next_pin = 1
        self.drain_page = syscalls.mmap(None, PAGE_SIZE, PROT_READ | PROT_WRITE, _ANON_PRIVATE)
        self.root = self._can_read_pfns()

    # -- bookkeeping -------------------------------------------------------------------

    @property
    def mapped(self) -> int:
        return sum(e - s for s, e in self.lab)

    def _inside_lab(self, start: int, end: int) -> bool:
        covered = start
        for s, e in sorted(self.lab):
            if s <= covered < e:
                covered = e
        return covered >= end

    def _check_range(self, start: int, length: int) -> None:
        """Refuse a range that overlaps a mapping the lab did not make. Holes (nothing
        mapped) are left to the kernel, which reports them with its own errno."""
        lo, hi = _page_span(start, length)
        if self._inside_lab(lo, hi):
            return
        for s, e, _ in _maps():
            if s < hi and lo < e and not self._inside_lab(max(s, lo), min(e, hi)):
                raise LabSafetyError(
                    f"[{start:#x}, {start + length:#x}) reaches memory the lab did not map "
                    f"(the VMA {s:#x}-{e:#x}); the live lab only touches its own mappings"
                )

    def _check_access(self, start: int, length: int, need: str) -> None:
        """Reads and writes are done with real loads and stores: refuse what would fault
        with SIGSEGV (outside the lab, unmapped, or without the permission)."""
        lo, hi = _page_span(start, length)
        if not self._inside_lab(lo, hi):
            raise WouldFault(f"[{start:#x}, {start + length:#x}) is not mapped by the lab")
        for s, e, perms in _maps():
            if s < hi and lo < e and need not in perms:
                raise WouldFault(f"{s:#x}-{e:#x} is {perms[:3]}: the access would raise SIGSEGV")

    def _can_read_pfns(self) -> bool:
        """Root (CAP_SYS_ADMIN) sees PFNs in pagemap and may read /proc/kpageflags."""
        syscalls.memset(self.drain_page, 0, 1)  # make it present just to look at its PFN
        pfn = procfs.pagemap_pfn(self.drain_page)
        syscalls.madvise(self.drain_page, PAGE_SIZE, MADV_DONTNEED)  # untouched again
        try:
            with open("/proc/kpageflags", "rb") as f:
                f.read(8)
        except OSError:
            return False
        return bool(pfn)

    def drain(self) -> None:
        syscalls.madvise(self.drain_page, PAGE_SIZE, MADV_FREE)

    # -- requests ----------------------------------------------------------------------

    def hello(self) -> dict:
        return {
            "pid": os.getpid(),
            "release": os.uname().release,
            "root": self.root,
            "pagemap_scan": procfs.pagemap_scan(self.drain_page, PAGE_SIZE) is not None,
            "pageout": self._advice_supported(MADV_PAGEOUT),
            "cold": self._advice_supported(MADV_COLD),
        }

    def _advice_supported(self, advice: int) -> bool:
        try:
            syscalls.madvise(self.drain_page, PAGE_SIZE, advice)
        except OSError as e:
            if e.errno == errno.EINVAL:
                return False
            raise
        return True

    def mmap(self, length: int, prot: int) -> int:
        length = -(-length // PAGE_SIZE) * PAGE_SIZE
        if length <= 0:
            raise OSError(errno.EINVAL, "mmap length must be positive")
        if self.mapped + length > LAB_LIMIT:
            raise LabSafetyError(
                f"mapping {length >> 20} MiB more would exceed the live lab's limit of "
                f"{LAB_LIMIT >> 20} MiB at a time; munmap something first"
            )
        # Reserve an inaccessible span, then map the 2 MiB aligned range inside it. One
        # PROT_NONE guard page stays on each side so the lab's VMA never merges with the
        # interpreter's own anonymous memory.
        reserve = length + HPAGE_PMD_SIZE + 2 * PAGE_SIZE
        base = syscalls.mmap(None, reserve, PROT_NONE, _ANON_PRIVATE)
        start = -(-(base + PAGE_SIZE) // HPAGE_PMD_SIZE) * HPAGE_PMD_SIZE
        syscalls.mmap(start, length, prot, _ANON_PRIVATE | syscalls.MAP_FIXED)
        if start - PAGE_SIZE > base:
            syscalls.munmap(base, start - PAGE_SIZE - base)
        if start + length + PAGE_SIZE < base + reserve:
            syscalls.munmap(start + length + PAGE_SIZE, base + reserve - (start + length + PAGE_SIZE))
        self.lab.append((start, start + length))
        return start

    def munmap(self, start: int, length: int) -> None:
        self._check_range(start, length)
        syscalls.munmap(start, length)
        self.lab = _subtract(self.lab, *_page_span(start, length))

    def madvise(self, start: int, length: int, advice: int) -> None:
        self._check_range(start, length)
        syscalls.madvise(start, length, advice)

    def timed_madvise(self, start: int, length: int, advice: int) -> tuple[float, float]:
        """madvise, returning (wall-clock seconds, CPU seconds of this thread) the syscall
        took, measured here rather than over IPC. CPU time leaves out time spent preempted
        by other processes, so it stays steady on a loaded machine."""
        self._check_range(start, length)
        wall, cpu = time.perf_counter(), time.thread_time()
        syscalls.madvise(start, length, advice)
        return time.perf_counter() - wall, time.thread_time() - cpu

    def mlock(self, start: int, length: int) -> None:
        self._check_range(start, length)
        syscalls.mlock(start, length)

    def mlock2(self, start: int, length: int, flags: int) -> None:
        self._check_range(start, length)
        syscalls.mlock2(start, length, flags)

    def munlock(self, start: int, length: int) -> None:
        self._check_range(start, length)
        syscalls.munlock(start, length)

    def mprotect(self, start: int, length: int, prot: int) -> None:
        self._check_range(start, length)
        syscalls.mprotect(start, length, prot)

    def mremap(self, old: int, old_length: int, new_length: int, flags: int, new: int) -> int:
        """mremap() of lab memory only; a fixed destination must be lab memory too (it is
        unmapped first). Where the mapping ends up becomes lab memory."""
        self._check_range(old, old_length)
        if flags & MREMAP_FIXED:
            self._check_range(new, new_length)
        if self.mapped + max(0, new_length - old_length) > LAB_LIMIT:
            raise LabSafetyError(f"growing by {(new_length - old_length) >> 20} MiB would exceed the live lab's "
                                 f"limit of {LAB_LIMIT >> 20} MiB at a time; munmap something first")
        result = syscalls.mremap(old, old_length, new_length, flags, new)
        kept = _subtract(self.lab, *_page_span(old, old_length))
        if flags & MREMAP_FIXED:
            kept = _subtract(kept, *_page_span(new, new_length))
        self.lab = kept + [_page_span(result, new_length)]
        return result

    def mlockall(self, flags: int) -> None:
        """mlockall() locks the whole server process, the interpreter's own memory with the
        lab's; only this process, and its MCL_FUTURE lasts until munlockall(). The drain
        page is unlocked and emptied again: ``drain`` needs it unlocked and untouched."""
        syscalls.mlockall(flags)
        syscalls.munlock(self.drain_page, PAGE_SIZE)
        syscalls.madvise(self.drain_page, PAGE_SIZE, MADV_DONTNEED)

    def munlockall(self) -> None:
        syscalls.munlockall()

    def write(self, start: int, length: int, value: int) -> None:
        self._check_access(start, length, "w")
        syscalls.memset(start, value, length)

    def read(self, addr: int) -> int:
        self._check_access(addr, 1, "r")
        return syscalls.read_byte(addr)

    def pin(self, start: int, length: int) -> int:
        lo, hi = _page_span(start, length)
        if not self._inside_lab(lo, hi):
            raise OSError(errno.EFAULT, f"[{start:#x}, {start + length:#x}) is not mapped by the lab")
        pin_id, self.next_pin = self.next_pin, self.next_pin + 1
        self.pins[pin_id] = syscalls.pin_user_pages(lo, hi - lo)
        return pin_id

    def unpin(self, pin_id: int) -> None:
        syscalls.unpin_user_pages(self.pins.pop(pin_id))

    def fork(self) -> int:
        child_sock = socket.socket(fileno=channel.recv_fd(self.sock))
        pid = os.fork()
        if pid == 0:
            self.sock.close()
            for fd in self.pins.values():  # pins belong to the parent
                os.close(fd)
            self.pins.clear()
            self.sock = child_sock
            serve(self)  # never returns
        child_sock.close()
        return pid

    def smaps(self) -> proc.Smaps:
        with open("/proc/self/smaps") as f:
            return procfs.parse_smaps(f.read(), keep=self.lab)

    def _pages(self, start: int, length: int) -> list[proc.PageInfo]:
        lo, hi = _page_span(start, length)
        return procfs.read_pages(lo, hi - lo, self.smaps(), self.root)

    def pagemap(self, start: int, length: int) -> list[tuple]:
        return [tuple(vars(p).values()) for p in self._pages(start, length)]

    def thp_map(self, start: int, length: int) -> str:
        return proc.thp_map(self._pages(start, length), start, length)


_ANON_PRIVATE = syscalls.MAP_PRIVATE | syscalls.MAP_ANONYMOUS
_OBSERVE = {"hello", "smaps", "pagemap", "thp_map"}
_REQUESTS = {
    "hello", "mmap", "munmap", "madvise", "timed_madvise", "mlock", "mlock2", "munlock",
    "mprotect", "mremap", "mlockall", "munlockall", "write", "read", "pin", "unpin", "fork", "smaps", "pagemap",
    "thp_map",
}  # fmt: skip


def serve(server: Server) -> None:
    """Answer requests until ``exit`` or until the notebook's end of the socket closes.

    Each reply is ``("ok", result, mapped)``, ``("oserror", errno, message)``,
    ``("refused", message)``, ``("segv", message)`` or ``("bug", traceback)``; ``mapped`` is
    the lab's current size.
    """
    while True:
        try:
            name, args = channel.recv(server.sock)
        except (channel.ChannelClosed, ConnectionError):
            os._exit(0)
        if name == "exit":
            channel.send(server.sock, ("ok", None, 0))
            os._exit(0)
        try:
            if name not in _REQUESTS:
                raise ValueError(f"unknown request {name!r}")
            result = getattr(server, name)(*args)
            if name not in _OBSERVE:
                server.drain()
            reply = ("ok", result, server.mapped)
        except OSError as e:
            server.drain()
            reply = ("oserror", e.errno, e.strerror or str(e))
        except LabSafetyError as e:
            reply = ("refused", str(e))
        except WouldFault as e:
            reply = ("segv", str(e))
        except Exception:
            reply = ("bug", traceback.format_exc())
        channel.send(server.sock, reply)


def _current_cpu() -> int:
    with open("/proc/self/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[36])  # field 39, "processor"


def main() -> None:
    sock = socket.socket(fileno=int(sys.argv[-1]))
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # forked live processes are reaped at once
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C in the notebook is the notebook's
    os.sched_setaffinity(0, {_current_cpu()})
    server = Server(sock)
    channel.send(sock, server.hello())
    serve(server)
