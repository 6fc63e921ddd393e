"""Machine and Process: the syscall-shaped facade over the model (mmlab.backend declares it).

A Machine is one simulated computer running one kernel profile: physical memory, the LRU,
/proc/vmstat, and its processes. A Process offers the system calls a learner would make.
Each call runs with the Machine as the kernel's global state (mmlab.state).
"""

from __future__ import annotations

from functools import wraps

from .include.mm import VM_WRITE, page_align, page_align_down
from .include.mm_inline import LRU_LISTS
from .include.mm_types import Folio, FolioSnapshot, MmStruct
from .include.page_flags import PG
from .include.pgtable import pmd_align_down
from .kernels import get_profile
from .mm import gup, madvise, memory, mlock, mmap, mprotect, mremap, task_mmu
from .mm.vmscan import shrink_lruvec
from .proc import VMSTAT_FIELDS, PageInfo, Smaps, thp_map
from .state import Trace, running
from .uapi import PAGE_SIZE, PROT_READ, PROT_WRITE

THP_MODES = ("always", "madvise", "never")


def syscall(method):
    """Run a Process method with its Machine as the running kernel; refuse after exit."""

    @wraps(method)
    def call(self, *args, **kwargs):
        if self.exited:
            raise ProcessLookupError(f"process {self.pid} has exited; spawn() or fork() a new one")
        with running(self.machine):
            return method(self, *args, **kwargs)

    return call


class Machine:
    """A simulated machine running one kernel profile (mmlab.PROFILES)."""

    def __init__(self, kernel: str = "6.18.44", *, thp: str = "madvise", use_zero_page: bool = True,
                 trace: bool = True):
        if thp not in THP_MODES:
            raise ValueError(f"thp must be one of {THP_MODES}, not {thp!r}")
        self.kernel = get_profile(kernel)
        self.thp = thp
        self.use_zero_page = use_zero_page
        self.tracing = trace
        self.trace = Trace(FolioSnapshot)
        self.vmstat = dict.fromkeys(VMSTAT_FIELDS, 0)
        self.lru = {name: {} for name in LRU_LISTS}
        self.folios: dict[int, Folio] = {}
        self.deferred_split_queue: dict[Folio, None] = {}
        self.next_pfn = 0x100000
        self.zero_folio = Folio(pfn=0, order=0, flags=PG.zero | PG.uptodate)
        self.huge_zero_folio = None
        self.next_anon_vma_id = 0
        self.processes: list[Process] = []
        self._next_pid = 1000

    def __repr__(self):
        live = sum(not p.exited for p in self.processes)
        return f"<Machine kernel={self.kernel.name} processes={live} folios={len(self.folios)}>"

    def spawn(self) -> Process:
        """A new process with an empty address space."""
        return Process(self)

    def reclaim(self) -> int:
        """Memory pressure: one pass of LRU reclaim over the file lists, the only ones
        scanned without swap (lazyfree folios are there). Returns the pages freed.
        Model only: the live lab never puts the host under pressure."""
        with running(self):
            return shrink_lruvec()

    def clear_trace(self) -> None:
        self.trace.clear()


class Process:
    """A process: its mm and the system calls that act on it."""

    def __init__(self, machine: Machine):
        self.machine = machine
        self.pid = machine._next_pid
        machine._next_pid += 1
        self.mm = MmStruct(id=self.pid, owner=self)
        self.exited = False
        machine.processes.append(self)

    def __repr__(self):
        return f"<Process {self.pid}{' (exited)' if self.exited else ''} vmas={len(self.mm.vmas)}>"

    @syscall
    def mmap(self, length: int, prot: int = PROT_READ | PROT_WRITE) -> int:
        """Private anonymous mapping, 2 MiB aligned; returns its address."""
        return mmap.do_mmap(self.mm, length, prot)

    @syscall
    def munmap(self, addr: int, length: int) -> None:
        mmap.do_munmap(self.mm, addr, length)

    @syscall
    def mprotect(self, addr: int, length: int, prot: int) -> None:
        mprotect.do_mprotect(self.mm, addr, length, prot)

    @syscall
    def madvise(self, addr: int, length: int, advice: int) -> None:
        madvise.do_madvise(self.mm, addr, length, advice)

    @syscall
    def mlock(self, addr: int, length: int) -> None:
        mlock.do_mlock(self.mm, addr, length, 0)

    @syscall
    def mlock2(self, addr: int, length: int, flags: int = 0) -> None:
        mlock.do_mlock(self.mm, addr, length, flags)

    @syscall
    def munlock(self, addr: int, length: int) -> None:
        mlock.do_munlock(self.mm, addr, length)

    @syscall
    def mlockall(self, flags: int) -> None:
        mlock.do_mlockall(self.mm, flags)

    @syscall
    def munlockall(self) -> None:
        mlock.do_munlockall(self.mm)

    @syscall
    def mremap(self, addr: int, old_length: int, new_length: int, flags: int = 0, new_addr: int = 0) -> int:
        """mremap(): returns where the mapping now is (MREMAP_MAYMOVE, MREMAP_FIXED)."""
        return mremap.do_mremap(self.mm, addr, old_length, new_length, flags, new_addr)

    @syscall
    def write(self, addr: int, length: int = PAGE_SIZE, value: int = 1) -> None:
        """Store ``value`` (0-255) in every byte of [addr, addr + length), as memset() would.
        The range must be mapped writable throughout, else SegmentationFault and nothing is
        stored."""
        if not 0 <= value <= 255:
            raise ValueError("value is one byte: 0 to 255")
        if length < 0:
            raise ValueError("length must not be negative")
        end = addr + length
        vmas = []
        start = addr
        while start < end:
            vma = memory.check_access(self.mm, start)
            if not vma.vm_flags & VM_WRITE:
                raise memory.SegmentationFault(f"write at {start:#x} not allowed by {vma!r}")
            vmas.append((vma, start, min(end, vma.vm_end)))
            start = vma.vm_end
        for vma, lo, hi in vmas:
            memory.write_range(vma, lo, hi, value)

    @syscall
    def read(self, addr: int) -> int:
        """Load the byte at ``addr``: 0 for memory never written or discarded by reclaim."""
        return memory.read_byte(memory.check_access(self.mm, addr), addr)

    @syscall
    def pin(self, addr: int, length: int = PAGE_SIZE) -> Pin:
        """pin_user_pages(): hold the pages with extra references until ``release()``."""
        start, end = page_align_down(addr), page_align(addr + length)
        mlock.check_range_mapped(self.mm, start, end)
        return Pin(self, gup.pin_user_pages(self.mm, start, end))

    @syscall
    def fork(self) -> Process:
        """A child sharing every anonymous page copy-on-write. VM_LOCKED is not inherited."""
        child = Process(self.machine)
        mmap.dup_mmap(child.mm, self.mm)
        return child

    @syscall
    def exit(self) -> None:
        """Tear down the address space; folios no one else maps are freed."""
        mmap.exit_mmap(self.mm)
        self.exited = True

    @syscall
    def smaps(self) -> Smaps:
        return task_mmu.smaps_of(self.mm)

    @syscall
    def pagemap(self, addr: int, length: int) -> list[PageInfo]:
        return task_mmu.pagemap_of(self.mm, page_align_down(addr), length)

    def thp_map(self, addr: int, length: int) -> str:
        """One character per 2 MiB slot (uapi.SLOT_LEGEND)."""
        start = pmd_align_down(addr)
        return thp_map(self.pagemap(start, length), start, length)


class Pin:
    """Pages held by pin_user_pages(), until released."""

    def __init__(self, process: Process, pinned: list):
        self.process = process
        self._pinned = pinned

    def release(self) -> None:
        if not self._pinned:
            raise ValueError("this pin was already released")
        with running(self.process.machine):
            for folio, refs in self._pinned:
                gup.unpin_folio(folio, refs)
        self._pinned = []

