"""Run a notebook in its own process, with limits, away from the course's private files.

Each run gets a scratch folder that is its working directory and its HOME; the environment
is rebuilt from scratch (nothing of the grader's leaks in but PATH and locale), the address
space and file sizes are limited, and a wall-clock watchdog kills the whole process group,
kernel included, if the notebook overruns.

When the grader can make private namespaces (it runs as root and ``unshare`` exists), each
run is also contained: it gets its own PID namespace, so every process it starts dies with
it, and the private paths (the source notebooks with their solutions, and the git
repository that holds them) are covered by an empty read-only tmpfs, so an attempt to read
``solutions/`` finds nothing. Otherwise the kernel's process group is killed after the run,
and the source folder is merely never copied into, or named in, the run: it stays reachable
by absolute path, so grade as a user who cannot read it.
"""

from __future__ import annotations

import functools
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import mmlab

from .checking import RESULTS_ENV
from .learner import GRADED_LEARNER_ENV, LEARNER_ENV
from .registry import CHECK_PATH_ENV

FILE_BYTES = 256 * 2**20


@dataclass(frozen=True)
class Limits:
    """How much time, memory and output one notebook may use."""

    cell_timeout: float = 60
    notebook_timeout: float = 300
    memory_mb: int = 2048
    output_chars: int = 200_000
    startup_grace: float = 30

    @property
    def wall_seconds(self) -> float:
        """When the watchdog kills a run: the notebook's time plus the grace for starting up."""
        return self.notebook_timeout + self.startup_grace


@dataclass(frozen=True)
class RunFiles:
    """The files one run reads and writes, all inside its scratch folder."""

    scratch: Path

    @property
    def notebook(self) -> Path:
        return self.scratch / "work" / "notebook.ipynb"

    @property
    def executed(self) -> Path:
        return self.scratch / "executed.ipynb"

    @property
    def log(self) -> Path:
        return self.scratch / "cells.jsonl"

    @property
    def results(self) -> Path:
        return self.scratch / "results.jsonl"

    @property
    def kernel_pid(self) -> Path:
        return self.scratch / "kernel.pid"

    @property
    def worker_output(self) -> Path:
        return self.scratch / "worker.log"


@dataclass(frozen=True)
class RunReport:
    returncode: int | None
    killed: bool


def new_scratch() -> RunFiles:
    """A fresh scratch folder (remove it with ``shutil.rmtree(files.scratch)``)."""
    files = RunFiles(Path(tempfile.mkdtemp(prefix="mmlab-grade-")))
    (files.scratch / "work").mkdir()
    return files


def run_notebook(files: RunFiles, limits: Limits, *, learner: str | None, hide: tuple[Path, ...] = ()) -> RunReport:
    """Execute ``files.notebook`` in a worker process; the outcome is in ``files.log`` and ``files.results``.

    ``learner`` (when grading) fixes the learner id the checks use; ``hide`` lists paths to
    make unreadable for the run, where the system allows it.
    """
    spec = {
        "notebook": str(files.notebook),
        "executed": str(files.executed),
        "log": str(files.log),
        "results": str(files.results),
        "kernel_pid": str(files.kernel_pid),
        "cwd": str(files.notebook.parent),
        "cell_timeout": limits.cell_timeout,
        "notebook_timeout": limits.notebook_timeout,
        "memory_bytes": limits.memory_mb * 2**20,
        "file_bytes": FILE_BYTES,
        "output_bytes": limits.output_chars,
    }
    spec_path = files.scratch / "spec.json"
    spec_path.write_text(json.dumps(spec), encoding="utf-8")
    command = [sys.executable, "-m", "mmlab.grading.worker", str(spec_path)]
    contained = can_contain()
    if contained:
        command = contained_command([p for p in hide if p.is_dir()], command)
    with open(files.worker_output, "wb") as output:
        process = subprocess.Popen(
            command,
            cwd=files.notebook.parent,
            env=run_environment(files, learner),
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            returncode = process.wait(timeout=limits.wall_seconds)
            killed = False
        except subprocess.TimeoutExpired:
            _kill_group(process.pid)
            returncode, killed = process.wait(), True
    if not contained:  # a PID namespace takes its processes with it; otherwise kill them here
        _kill_kernel(files)
    return RunReport(returncode, killed)


def run_environment(files: RunFiles, learner: str | None) -> dict[str, str]:
    """The whole environment of a run: HOME and temp in scratch, mmlab importable, nothing else."""
    home = files.scratch / "home"
    (home / "tmp").mkdir(parents=True, exist_ok=True)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        "HOME": str(home),
        "TMPDIR": str(home / "tmp"),
        "PYTHONPATH": str(Path(mmlab.__file__).resolve().parent.parent),
        "PYTHONNOUSERSITE": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
        "MALLOC_ARENA_MAX": "2",
        "JUPYTER_CONFIG_DIR": str(home / ".jupyter"),
        "JUPYTER_DATA_DIR": str(home / ".local/share/jupyter"),
        "JUPYTER_RUNTIME_DIR": str(home / ".local/share/jupyter/runtime"),
        "IPYTHONDIR": str(home / ".ipython"),
        "MPLBACKEND": "Agg",
        RESULTS_ENV: str(files.results),
    }
    if os.environ.get(CHECK_PATH_ENV):
        env[CHECK_PATH_ENV] = os.environ[CHECK_PATH_ENV]
    if learner is not None:
        env[GRADED_LEARNER_ENV] = learner
    elif os.environ.get(LEARNER_ENV):
        env[LEARNER_ENV] = os.environ[LEARNER_ENV]
    return env


@functools.cache
def can_contain() -> bool:
    """True if runs can get their own PID and mount namespaces (root, with ``unshare``)."""
    if os.geteuid() != 0 or not shutil.which("unshare"):
        return False
    with tempfile.TemporaryDirectory() as probe:
        Path(probe, "secret").write_text("x")
        command = contained_command([Path(probe)], ["test", "!", "-e", str(Path(probe, "secret"))])
        return subprocess.run(command, capture_output=True).returncode == 0


def contained_command(hide: list[Path], command: list[str]) -> list[str]:
    """``command`` run in new PID and mount namespaces, with an empty tmpfs over each of ``hide``."""
    mounts = "".join(f"mount -t tmpfs -o ro,size=4k mmlab-hidden {shlex.quote(str(p))} && " for p in hide)
    namespaces = ["unshare", "--mount", "--propagation", "private", "--pid", "--fork", "--kill-child", "--mount-proc"]
    return [*namespaces, "sh", "-c", f'{mounts}exec "$@"', "sh", *command]


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _kill_kernel(files: RunFiles) -> None:
    """Kill the kernel's process group (it is its own session) and whatever it started."""
    try:
        _kill_group(int(files.kernel_pid.read_text()))
    except (FileNotFoundError, ValueError):
        pass
