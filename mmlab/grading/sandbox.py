"""Where a graded notebook's kernel runs: a bubblewrap sandbox, under limits, as nobody in particular.

The kernel is the only thing in the sandbox: the grader drives it from outside, over Unix
sockets in one shared folder, and decides every verdict outside (``mmlab.grading.worker``).
Inside, it gets

- its own user, PID, mount, network (none at all), IPC, UTS and cgroup namespaces
  (``bwrap --unshare-all``), and dies with the process that started it;
- a read-only view of the system (``/usr``), of Python and of mmlab, in which
  ``mmlab/grading`` shows only the learner's side (``PUBLIC``): not the answer key, not the
  grader; no view of the submissions, the output folder, ``solutions/``, ``.git`` or home;
- a private ``/tmp`` (its home and working folder) of at most ``Limits.disk_mb``; the one
  folder outside it that it can write, where its sockets are, is closed to it once they are
  made when the grader runs as root (``mmlab.grading.worker``);
- when the grader runs as root, an unprivileged user id of its own (one per job slot), so
  sandboxes cannot signal or count against each other: bubblewrap sets up the namespaces as
  root (so Python may live where only root can reach, as pyenv's does under /root), then
  ``setpriv`` drops to that id with no capabilities and no way to gain any, and ``unshare``
  gives it a user namespace of its own; as an ordinary user, that user's own id, in a user
  namespace bubblewrap makes;
- resource limits for all its processes: address space per process, number of processes
  (so memory is bounded by their product: control groups here are v1, not delegable),
  CPU seconds, file size, no core dumps.

Without bubblewrap, ``mmlab grade`` refuses untrusted work unless told ``--unsafe``; then
the kernel runs as the grader's user under the same limits, and verdicts are still decided
outside it.
"""

from __future__ import annotations

import functools
import itertools
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

import mmlab

INSTALL_HINT = "sudo apt-get install bubblewrap (Debian, Ubuntu), or: dnf install bubblewrap (Fedora)"
PUBLIC = ("__init__.py", "answers.py", "collect.py", "learner.py", "plain.py", "registry.py", "links.py", "exercises")
"""What a sandboxed kernel sees of ``mmlab/grading``: the learner's side of a check, nothing else."""

SANDBOX_UID = 61000
"""The first of the user ids graded kernels run as when the grader is root (one per job slot)."""

HOME = "/tmp/home"


@dataclass(frozen=True)
class Limits:
    """How much time, memory, processes, disk and output one notebook may use (output: what the
    grader keeps of one cell's and of the whole notebook's, in characters, and the largest
    message it takes from the kernel at all)."""

    cell_timeout: float = 60
    notebook_timeout: float = 300
    memory_mb: int = 2048
    output_chars: int = 200_000
    notebook_output_chars: int = 2_000_000
    message_mb: int = 64
    processes: int = 64
    disk_mb: int = 64
    startup_grace: float = 30

    @property
    def wall_seconds(self) -> float:
        """When the grader gives up on a run: the notebook's time plus the grace for starting up."""
        return self.notebook_timeout + self.startup_grace

    @property
    def cpu_seconds(self) -> int:
        """CPU seconds one process may use: the notebook's time limit, with a margin for start-up."""
        return int(self.notebook_timeout + self.startup_grace)


class SandboxUnavailable(RuntimeError):
    """Bubblewrap is missing or cannot make namespaces here; the message says what to do."""


@functools.cache
def sandbox_problem() -> str | None:
    """None if bubblewrap works here, else why not (with the way to fix it)."""
    if not sys.platform.startswith("linux"):
        return "the sandbox needs Linux (bubblewrap); on other systems grade on a Linux machine"
    if not shutil.which("bwrap"):
        return f"bubblewrap (bwrap) is not installed: {INSTALL_HINT}"
    uid = SANDBOX_UID if os.geteuid() == 0 else None
    with tempfile.TemporaryDirectory(prefix="mmlab-probe-") as sockets:
        if uid is not None:
            os.chown(sockets, uid, uid)
        command = sandboxed(["true"], sockets=Path(sockets), limits=Limits(), uid=uid, unsafe=False)
        probe = subprocess.run(command, capture_output=True, text=True)
    if probe.returncode != 0:
        detail = probe.stderr.strip().splitlines()[-1:] or ["no message"]
        return (
            f"bubblewrap cannot make a sandbox here ({detail[0]}); it needs user namespaces "
            "(kernel.unprivileged_userns_clone=1, or run as root)"
        )
    return None


class UidPool:
    """Unprivileged user ids for concurrent sandboxes when the grader is root (else unused)."""

    def __init__(self):
        self._free = itertools.count(SANDBOX_UID)
        self._returned: list[int] = []
        self._lock = threading.Lock()

    def take(self) -> int | None:
        if os.geteuid() != 0:
            return None
        with self._lock:
            return self._returned.pop() if self._returned else next(self._free)

    def give_back(self, uid: int | None) -> None:
        if uid is not None:
            with self._lock:
                self._returned.append(uid)


UIDS = UidPool()


def _drop_root(uid: int | None) -> list[str]:
    """Inside the sandbox, as root: become ``uid`` for good, in a user namespace of its own."""
    if uid is None:
        return []
    drop = ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--inh-caps=-all"]
    return [*drop, "--bounding-set=-all", "--no-new-privs", "--", "unshare", "--user", "--map-current-user", "--"]


def _limits(limits: Limits, uid: int | None) -> list[str]:
    memory = limits.memory_mb * 2**20
    processes = limits.processes if uid is not None else _own_processes() + limits.processes
    return [
        "prlimit",
        f"--as={memory}",
        f"--nproc={processes}",
        f"--cpu={limits.cpu_seconds}:{limits.cpu_seconds + 5}",
        f"--fsize={limits.disk_mb * 2**20}",
        "--core=0",
        "--",
    ]


def _own_processes() -> int:
    """How many processes this user has now: an ordinary user's process limit counts them all."""
    uid = os.getuid()
    count = 0
    for entry in Path("/proc").iterdir():
        try:
            count += entry.name.isdigit() and entry.stat().st_uid == uid
        except OSError:
            continue
    return count


def _system_binds() -> list[str]:
    """The read-only system: /usr, and the top-level links or folders that lead into it."""
    args = ["--ro-bind", "/usr", "/usr"]
    for top in ("/bin", "/sbin", "/lib", "/lib32", "/lib64"):
        path = Path(top)
        if path.is_symlink():
            args += ["--symlink", os.readlink(path), top]
        elif path.is_dir():
            args += ["--ro-bind", top, top]
    for etc in ("/etc/ld.so.cache", "/etc/localtime", "/etc/alternatives"):
        args += ["--ro-bind-try", etc, etc]
    return args


def _python_binds() -> list[str]:
    """Python, the virtual environment and mmlab, read-only; of mmlab/grading only ``PUBLIC``.

    The folders leading to them are made readable by all (bubblewrap would make them private
    to root), and hold nothing else.
    """
    package = Path(mmlab.__file__).absolute().parent
    roots = {Path(p).absolute() for p in (sys.base_prefix, sys.prefix, Path(sys.executable).resolve().parent.parent)}
    roots.add(package)
    args, made = [], set()
    for root in sorted(roots, key=lambda p: len(p.parts)):
        if any(parent in roots for parent in root.parents) or root.is_relative_to("/usr"):
            continue
        for parent in reversed(root.parents[:-1]):
            if parent not in made:
                made.add(parent)
                args += ["--perms", "0755", "--dir", str(parent)]
        args += ["--ro-bind", str(root), str(root)]
    grading = package / "grading"
    args += ["--tmpfs", str(grading)]
    for name in PUBLIC:
        args += ["--ro-bind", str(grading / name), str(grading / name)]
    return [*args, "--remount-ro", str(grading)]


def sandboxed(argv: list[str], *, sockets: Path, limits: Limits, uid: int | None, unsafe: bool) -> list[str]:
    """``argv`` as it runs in the sandbox (or, when ``unsafe``, merely under the limits)."""
    if unsafe:
        return [*_limits(limits, uid=None), *argv]
    namespaces = ["--unshare-all"] if uid is None else [f"--unshare-{ns}" for ns in ("pid", "net", "ipc", "uts")]
    bwrap = [
        "bwrap",
        *namespaces,
        "--unshare-cgroup-try",
        "--die-with-parent",
        "--hostname",
        "graded",
        *_system_binds(),
        "--size",
        str(limits.disk_mb * 2**20),
        "--perms",
        "1777",
        "--tmpfs",
        "/tmp",
        "--perms",
        "0777",
        "--dir",
        HOME,
        *_python_binds(),  # after /tmp: Python or mmlab may live below it
        "--proc",
        "/proc",
        "--dev",
        "/dev",
        "--bind",
        str(sockets),
        str(sockets),
        "--chdir",
        HOME,
        "--",
    ]
    # ipykernel exits when its parent is not the process that started it (JPY_PARENT_PID); in
    # the sandbox its parent is the PID namespace's init, and the sandbox dies with the worker.
    return [*_limits(limits, uid), *bwrap, *_drop_root(uid), "env", "-u", "JPY_PARENT_PID", *argv]


def kernel_environment(*, home: str, extra: dict[str, str]) -> dict[str, str]:
    """The whole environment of a graded kernel: nothing of the grader's leaks in."""
    package_parent = str(Path(mmlab.__file__).absolute().parent.parent)
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "HOME": home,
        "TMPDIR": f"{home}/tmp",
        "PYTHONPATH": package_parent,
        "PYTHONNOUSERSITE": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
        "MALLOC_ARENA_MAX": "2",
        "JUPYTER_CONFIG_DIR": f"{home}/.jupyter",
        "JUPYTER_DATA_DIR": f"{home}/.local/share/jupyter",
        "JUPYTER_RUNTIME_DIR": f"{home}/.local/share/jupyter/runtime",
        "IPYTHONDIR": f"{home}/.ipython",
        "MPLBACKEND": "Agg",
    }
    env.update(extra)
    return env
