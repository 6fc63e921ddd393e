"""What this machine offers the live lab, and one clear line for each thing it lacks.

Everything here is read, never written: /sys/kernel/mm/transparent_hugepage, /proc/swaps,
the resource limits, and what a short-lived lab server finds out from its own syscalls
(whether MADV_PAGEOUT, MADV_COLD and PAGEMAP_SCAN exist, whether PFNs are visible).
"""

from __future__ import annotations

import functools
import os
import platform
from dataclasses import dataclass

THP_SYSFS = "/sys/kernel/mm/transparent_hugepage"

# What a scenario may need, and the line printed when the machine lacks it.
NEEDS = ("linux", "thp", "huge_zero_page", "pageout", "cold", "mlock", "no_swap")


class LiveUnavailable(RuntimeError):
    """The live lab cannot run here at all (for example: not Linux)."""


@dataclass(frozen=True)
class Environment:
    system: str
    release: str | None = None
    version: str | None = None  # uname -v: for Debian's kernels it names the upstream release
    thp: str | None = None  # the bracketed word of .../transparent_hugepage/enabled
    huge_zero_page: bool | None = None
    swap_kb: int | None = None
    root: bool | None = None  # PFNs, /proc/kpageflags and /proc/kpagecount readable
    pagemap_scan: bool | None = None  # PAGEMAP_SCAN ioctl (Linux 6.7+)
    pageout: bool | None = None  # MADV_PAGEOUT (Linux 5.4+)
    cold: bool | None = None  # MADV_COLD (Linux 5.4+)
    memlock_bytes: int | None = None  # RLIMIT_MEMLOCK, None when unlimited (or root)

    @property
    def linux(self) -> bool:
        return self.system == "Linux"

    def lacking(self, need: str) -> str | None:
        """Why ``need`` (one of NEEDS) is not met here, in one line; None when it is."""
        if not self.linux:
            return f"not Linux ({self.system}): the live lab makes Linux syscalls on the host kernel"
        if need == "thp" and self.thp not in ("always", "madvise"):
            state = "not built in" if self.thp is None else f"'{self.thp}'"
            return f"transparent huge pages are {state} here ({THP_SYSFS}/enabled); THP scenarios skipped"
        if need == "huge_zero_page" and not self.huge_zero_page:
            return f"the huge zero page is off here ({THP_SYSFS}/use_zero_page): its scenario skipped"
        if need == "pageout" and not self.pageout:
            return f"kernel {self.release} has no MADV_PAGEOUT (Linux 5.4+): reclaim scenarios skipped"
        if need == "cold" and not self.cold:
            return f"kernel {self.release} has no MADV_COLD (Linux 5.4+): MADV_COLD scenarios skipped"
        if need == "mlock" and self.memlock_bytes is not None and self.memlock_bytes < 64 << 20:
            return (
                f"RLIMIT_MEMLOCK is {self.memlock_bytes >> 10} KiB (the lab needs 64 MiB; "
                "run as root or raise it with ulimit -l): mlock scenarios skipped"
            )
        if need == "no_swap" and self.swap_kb:
            return f"{self.swap_kb >> 10} MiB of swap is on: scenarios that assume no swap skipped"
        return None

    def notes(self) -> list[str]:
        """One line for each limitation that does not stop a scenario but blanks fields."""
        lines = []
        if self.linux and not self.root:
            lines.append(
                "not root: PFNs, /proc/kpageflags and /proc/kpagecount are unreadable, "
                "so page flags and mapcounts are reported as unavailable (None)"
            )
        if self.linux and self.pagemap_scan is False:
            lines.append(
                f"kernel {self.release} has no PAGEMAP_SCAN (Linux 6.7+): PMD mappings are "
                "inferred from smaps AnonHugePages where it is unambiguous, else None"
            )
        return lines

    def problems(self) -> list[str]:
        reasons = [self.lacking(need) for need in NEEDS]
        return list(dict.fromkeys(r for r in reasons if r)) + self.notes()


def _read(path: str) -> str | None:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None


def _bracketed(text: str | None) -> str | None:
    if text is None:
        return None
    return next((w[1:-1] for w in text.split() if w.startswith("[")), None)


def _swap_kb() -> int | None:
    text = _read("/proc/swaps")
    if text is None:
        return None
    return sum(int(line.split()[2]) for line in text.splitlines()[1:] if line.strip())


@functools.lru_cache(maxsize=1)
def probe() -> Environment:
    """Look at this machine once (the result is cached for the interpreter's lifetime)."""
    system = platform.system()
    if system != "Linux":
        return Environment(system)
    from .process import spawn_server  # a server answers for the syscalls it can make

    sock, hello, popen = spawn_server()
    sock.close()
    popen.wait()
    import resource  # Unix only

    soft, _ = resource.getrlimit(resource.RLIMIT_MEMLOCK)
    zero = _read(f"{THP_SYSFS}/use_zero_page")
    return Environment(
        system=system,
        release=os.uname().release,
        version=os.uname().version,
        thp=_bracketed(_read(f"{THP_SYSFS}/enabled")),
        huge_zero_page=None if zero is None else zero.strip() == "1",
        swap_kb=_swap_kb(),
        root=hello["root"],
        pagemap_scan=hello["pagemap_scan"],
        pageout=hello["pageout"],
        cold=hello["cold"],
        memlock_bytes=None if soft == resource.RLIM_INFINITY or os.geteuid() == 0 else soft,
    )
