"""The facade both backends implement: the model (``mmlab.Machine``) and the host kernel
(``mmlab.live.Machine``). Scenarios, the live comparison and the course's cells are written
against these Protocols only, which is what lets one scenario run on either; a test checks
that both backends implement every member with the same parameters.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from .proc import PageInfo, Smaps
from .uapi import PAGE_SIZE, PROT_READ, PROT_WRITE


@runtime_checkable
class Pin(Protocol):
    """Pages held with extra references (pin_user_pages, or vmsplice on the host)."""

    def release(self) -> None: ...


@runtime_checkable
class Process(Protocol):
    """One process and the system calls a learner makes on it. Errors are the syscall's:
    ``OSError`` with Linux's errno, ``SegmentationFault`` for a bad access."""

    pid: int
    exited: bool

    def mmap(self, length: int, prot: int = PROT_READ | PROT_WRITE) -> int: ...

    def munmap(self, addr: int, length: int) -> None: ...

    def mprotect(self, addr: int, length: int, prot: int) -> None: ...

    def madvise(self, addr: int, length: int, advice: int) -> None: ...

    def mlock(self, addr: int, length: int) -> None: ...

    def mlock2(self, addr: int, length: int, flags: int = 0) -> None: ...

    def munlock(self, addr: int, length: int) -> None: ...

    def mlockall(self, flags: int) -> None: ...

    def munlockall(self) -> None: ...

    def mremap(self, addr: int, old_length: int, new_length: int, flags: int = 0, new_addr: int = 0) -> int: ...

    def write(self, addr: int, length: int = PAGE_SIZE, value: int = 1) -> None: ...

    def read(self, addr: int) -> int: ...

    def pin(self, addr: int, length: int = PAGE_SIZE) -> Pin: ...

    def fork(self) -> Process: ...

    def exit(self) -> None: ...

    def smaps(self) -> Smaps: ...

    def pagemap(self, addr: int, length: int) -> list[PageInfo]: ...

    def thp_map(self, addr: int, length: int) -> str: ...


@runtime_checkable
class Machine(Protocol):
    """A kernel to run processes on: ``vmstat`` is /proc/vmstat as {counter: value}."""

    @property
    def vmstat(self) -> dict: ...

    @property
    def processes(self) -> list: ...

    def spawn(self) -> Process: ...
