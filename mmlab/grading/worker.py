"""Run one assembled notebook in a sandboxed kernel, collect its answers, and judge them outside.

``grade(spec)`` runs in the grader's process, one thread per notebook being graded. It is
trusted code and runs outside the sandbox: it loads the answer key, draws the learner's
variants and the inputs of each function check, starts the notebook's kernel in the sandbox
(``mmlab.grading.sandbox``) and drives it cell by cell over Unix sockets. At each check cell
it does not run the cell's ``check(...)``; it asks the kernel for the answer the cell names,
as plain data, and gets back JSON. Once the kernel is gone it judges every answer
(``mmlab.grading.judge``) and returns the verdicts, with what happened cell by cell. A
watchdog ends the sandbox of a run that overruns its time, whatever it is doing. Whatever
the notebook does (patch mmlab, redefine ``check``, print fake results, kill its kernel) it
can change only the answers it gives.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import tempfile
import threading
import time
from pathlib import Path

import nbformat
import zmq
from jupyter_client.manager import AsyncKernelManager
from jupyter_core.utils import ensure_event_loop
from nbclient import NotebookClient
from nbclient.exceptions import DeadKernelError

from . import judge, learner, plain, registry
from .answers import GRADING_ENV, MIME
from .sandbox import HOME, Limits, kernel_environment, sandboxed

TIMEOUT_ENAME = "CellTimeout"
PROBE_SECONDS = 3
KEY = threading.Lock()
"""Held while the answer key runs the model: the model keeps its running machine in one global
place, so two threads must never run it at once."""
KILLED_BY = {128 + signal.SIGKILL: "killed", 128 + signal.SIGXCPU: "cpu", 128 + signal.SIGXFSZ: "disk"}


class SandboxedKernelManager(AsyncKernelManager):
    """A kernel manager whose kernel command runs through ``wrap`` (the sandbox), as ``owner``,
    and whose clients take no message larger than ``message_bytes`` from it."""

    wrap = None
    owner: int | None = None
    message_bytes: int = 0

    def format_kernel_cmd(self, extra_arguments=None):
        if self.owner is not None:  # the connection file is written private to root; the kernel reads it
            os.chown(self.connection_file, self.owner, self.owner)
        return self.wrap(super().format_kernel_cmd(extra_arguments))

    def client(self, **kwargs):
        # ZeroMQ hands over a message only whole, so the grader would hold a kernel's largest
        # message in memory before it could cut it; a larger one ends the connection instead
        # (for good: the answers after it are lost, and the feedback says why that may be).
        client = super().client(**kwargs)
        client.context.setsockopt(zmq.MAXMSGSIZE, self.message_bytes)
        return client


class LimitedClient(NotebookClient):
    """An nbclient that keeps at most ``output_bytes`` of output per cell and ``notebook_bytes``
    in all (answers aside), and remembers replies.

    Everything it keeps goes into the executed notebook and the feedback page, so a notebook
    of many cells must not make them grow without bound. For the same reason it keeps no
    widget state and ignores updates of earlier outputs by display id: one update would
    otherwise be copied into every output that shares the id, past every limit.
    """

    def __init__(self, nb, *, output_bytes: int, notebook_bytes: int, **kwargs):
        super().__init__(nb, on_cell_executed=self._remember, store_widget_state=False, **kwargs)
        self.output_bytes = output_bytes
        self.notebook_bytes = notebook_bytes
        self.used: dict[int, int] = {}
        self.total = 0
        self.replies: dict[int, dict] = {}

    def _remember(self, cell, cell_index, execute_reply):
        self.replies[cell_index] = execute_reply["content"] if execute_reply else {}

    def _update_display_id(self, display_id, msg):
        pass

    def output(self, outs, msg, display_id, cell_index):
        content = msg["content"]
        size = len(str(content.get("text", ""))) + sum(len(str(v)) for v in content.get("data", {}).values())
        used = self.used.get(cell_index, 0)
        shown = 0 if MIME in content.get("data", {}) else size  # an answer is never cut for what came before
        if used + size <= self.output_bytes and self.total + shown <= self.notebook_bytes:
            self.used[cell_index] = used + size
            self.total += shown
            return super().output(outs, msg, display_id, cell_index)
        if used <= self.output_bytes:  # the first cut in this cell: say so, once
            over_cell = used + size > self.output_bytes
            whose, limit = ("cell", self.output_bytes) if over_cell else ("notebook", self.notebook_bytes)
            note = f"\n[The grader cut this cell's output here: the {whose}'s output passed {limit} characters.]\n"
            outs.append(nbformat.v4.new_output("stream", name="stdout", text=note))
            self.used[cell_index] = self.output_bytes + 1
        return None

    def kernel_responds(self) -> bool:
        """True if the kernel answers a trivial request within PROBE_SECONDS (after a timeout)."""
        self.timeout, self.shell_timeout_interval = PROBE_SECONDS, 1
        return self.wait_for_reply(self.kc.execute("pass", store_history=False)) is not None


class Run:
    """One notebook's run: the cells' fates, the answers collected, and why it stopped early."""

    def __init__(self, spec: dict):
        self.spec = spec
        self.limits = Limits(**spec["limits"])
        self.nb = nbformat.read(spec["notebook"], as_version=4)
        self.checks = {int(k): v for k, v in spec["checks"].items()}  # cell index -> [[check id, expression]]
        self.cells: dict[int, dict] = {}  # cell index -> {"status", "ename", "evalue"}
        self.collected: dict[str, dict] = {}  # check id -> the fate of the request for its answer
        self.answers: dict[str, dict] = {}
        self.stop: dict | None = None
        self.km: AsyncKernelManager | None = None
        self.killed = False
        self.index: int | None = None  # the cell being run, once the kernel has started

    def kill(self) -> None:
        """The watchdog's call: end the sandbox now (the run then finds its kernel dead)."""
        self.killed = True
        if self.km is not None:
            _kill(self.km)

    def execute(self, variants: dict, cases: dict) -> None:
        sockets = Path(tempfile.mkdtemp(prefix="mmlab-k-"))
        if self.spec["uid"] is not None:
            os.chown(sockets, self.spec["uid"], self.spec["uid"])
        home = HOME if not self.spec["unsafe"] else str(Path(self.spec["scratch"]) / "home")
        Path(self.spec["scratch"], "home").mkdir(exist_ok=True)
        km = SandboxedKernelManager(
            kernel_name="python3", transport="ipc", ip=str(sockets / "k"), connection_file=str(sockets / "kernel.json")
        )
        # A signal to the kernel's process group would reach bubblewrap, which dies of it, and the
        # sandbox with it: ask the kernel to interrupt itself instead.
        km.kernel_spec.interrupt_mode = "message"
        km.owner = self.spec["uid"]
        km.message_bytes = self.limits.message_mb * 2**20
        self.km = km
        km.wrap = lambda argv: sandboxed(
            argv, sockets=sockets, limits=self.limits, uid=self.spec["uid"], unsafe=self.spec["unsafe"]
        )
        env = kernel_environment(
            home=home,
            extra={
                GRADING_ENV: "1",
                learner.GRADED_LEARNER_ENV: self.spec["learner"],
                learner.GRADED_VARIANTS_ENV: plain.dumps(variants),
            },
        )
        client = LimitedClient(
            self.nb,
            km=km,
            output_bytes=self.limits.output_chars,
            notebook_bytes=self.limits.notebook_output_chars,
            allow_errors=True,
            interrupt_on_timeout=True,
            error_on_timeout={"ename": TIMEOUT_ENAME, "evalue": "", "traceback": []},
            iopub_timeout=2,
            startup_timeout=self.limits.startup_grace,
            shutdown_kernel="immediate",
        )
        deadline = time.monotonic() + self.limits.notebook_timeout
        quiet_leftovers()
        try:
            log = open(Path(self.spec["scratch"]) / "kernel.log", "wb")  # noqa: SIM115 - closed below
            # cleanup_kc: nbclient shuts down a kernel manager it was given only when told to,
            # and only then frees its sockets and ZeroMQ context
            setup = client.setup_kernel(env=env, cwd=self.spec["scratch"], stdout=log, stderr=log, cleanup_kc=True)
            with log, setup:
                if self.spec["uid"] is not None:
                    _close_folder(sockets)
                self._run_cells(client, cases, deadline)
        except DeadKernelError:
            pass  # recorded by _run_cells
        except Exception as error:  # the kernel never started, or nbclient failed on what the kernel sent
            message = f"{type(error).__name__}: {error}"[:500]
            event = {"event": "kernel-failed"} if self.index is None else {"event": "broke", "index": self.index}
            self.stop = self.stop or {**event, "message": message}
        finally:
            _kill(km)
            shutil.rmtree(sockets, ignore_errors=True)

    def _run_cells(self, client: LimitedClient, cases: dict, deadline: float) -> None:
        for index, cell in enumerate(self.nb.cells):
            if cell.cell_type != "code" or not cell.source.strip():
                continue
            self.index = index
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self.killed:
                self.stop = {"event": "deadline", "index": index}
                return
            limit = "cell" if self.limits.cell_timeout <= remaining else "notebook"
            client.timeout = max(1, int(min(self.limits.cell_timeout, remaining)))
            if index in self.checks:
                ok = self._collect(client, index, cell, cases, limit)
            else:
                ok = self._execute(client, index, cell, limit)
            if not ok:
                return

    def _execute(self, client: LimitedClient, index: int, cell, limit: str, store_history: bool = True) -> bool:
        """Run one cell; record its fate; False if the run cannot go on."""
        try:
            return self._execute_alive(client, index, cell, limit, store_history)
        except DeadKernelError:
            self.stop = {"event": "died", "index": index, "how": _how_it_died(self.km)}
            raise

    def _execute_alive(self, client: LimitedClient, index: int, cell, limit: str, store_history: bool) -> bool:
        client.execute_cell(cell, index, store_history=store_history)
        reply = client.replies.get(index, {})
        fate = {"status": "ok" if reply.get("status") == "ok" else "error"}
        fate.update(ename=reply.get("ename"), evalue=reply.get("evalue"))
        if fate["ename"] == TIMEOUT_ENAME:
            fate.update(status="timeout", evalue=f"stopped after {client.timeout} s (the {limit} time limit)")
            cell.outputs.append(nbformat.v4.new_output("error", ename=TIMEOUT_ENAME, evalue=fate["evalue"]))
        self.cells[index] = fate
        if fate["status"] == "timeout" and not client.kernel_responds():
            self.stop = {"event": "stuck", "index": index}
            return False
        return True

    def _collect(self, client: LimitedClient, index: int, cell, cases: dict, limit: str) -> bool:
        """At a check cell: ask the kernel for each answer the cell names, as plain data."""
        shown = cell.source
        outputs = []
        for check_id, expression in self.checks[index]:
            request = (
                '__import__("mmlab.grading.answers", fromlist=["report"]).report('
                f"{check_id!r}, lambda: ({expression}), {plain.dumps(cases.get(check_id))!r})"
            )
            probe = nbformat.v4.new_code_cell(request)
            if not self._execute(client, index, probe, limit, store_history=False):
                return False
            fate = self.cells[index]
            answer = _answer_in(probe.outputs, check_id)
            if answer is not None:
                self.answers[check_id] = answer
            elif fate["status"] == "ok":
                self.cells[index] = {**fate, "status": "error", "ename": "NoAnswer", "evalue": ""}
            outputs += [o for o in probe.outputs if MIME not in o.get("data", {})]
            self.collected[check_id] = self.cells[index]
        cell.source, cell.outputs = shown, outputs
        return True


def _close_folder(sockets: Path) -> None:
    """Once the kernel (as a user of its own) has made its sockets, let it add no file to their
    folder: the folder is outside the sandbox, and the limit on the size of a file would not
    bound how many it writes there. (As an ordinary user the kernel owns the folder, and could
    undo this: grading as root is what closes that way of filling the grader's disk.)"""
    os.chown(sockets, os.getuid(), os.getgid())
    os.chmod(sockets, 0o755)


def _kill(km: AsyncKernelManager) -> None:
    """End the kernel's process group (the sandbox, or the kernel when unsafe) and all it started.

    The watchdog's way to stop a run at once; after a run, a safety net should nbclient's own
    shutdown have failed (it is a no-op once that has freed the kernel). The sandbox's PID
    namespace takes every process in it along when bubblewrap, its leader, dies.
    """
    process = getattr(km.provisioner, "process", None) if km.provisioner else None
    if process is None:
        return
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    process.wait()


def quiet_leftovers() -> asyncio.AbstractEventLoop:
    """The event loop nbclient's blocking calls run on in this thread, made to let go quietly
    of errors no task read.

    At the end of some runs nbclient leaves a watcher task behind that then fails (the client
    it checks is gone) with no one to read the error; what the run saw is already recorded.
    asyncio's default handler logs such an error, traceback formatted, whenever the garbage
    collector frees the task; on CPython 3.11 (3.11.7 here) that formatting parses source,
    and if the collection interrupted another parse in this process (the grader reading a
    notebook's cells), that parse fails with "AST constructor recursion depth mismatch"
    (CPython issue gh-106905, a counter the two parses share).
    """
    loop = ensure_event_loop()
    loop.set_exception_handler(_ignore)
    return loop


def _ignore(loop: asyncio.AbstractEventLoop, context: dict) -> None:
    """An asyncio exception handler that does nothing (see quiet_leftovers)."""


def _how_it_died(km: AsyncKernelManager) -> str | None:
    """ "killed", "cpu" or "disk" when the sandbox's exit status says a signal or limit ended it."""
    process = getattr(km.provisioner, "process", None) if km.provisioner else None
    code = process.poll() if process is not None else None
    if code is None:
        return None
    return KILLED_BY.get(code if code >= 0 else 128 - code)


def _answer_in(outputs: list, check_id: str) -> dict | None:
    """The answer the kernel reported for ``check_id`` (the last, if it sent several), or None."""
    found = None
    for output in outputs:
        data = output.get("data", {}).get(MIME) if output.get("output_type") == "display_data" else None
        if isinstance(data, dict) and data.get("check") == check_id and isinstance(data.get("answer"), dict):
            found = data["answer"]
    return found


def grade(spec: dict) -> dict:
    """Run the notebook of ``spec`` and judge it: the result the grader reads."""
    registry.load_checks()
    who = spec["learner"]
    ids = [check_id for pairs in spec["checks"].values() for check_id, _ in pairs]
    checks = {check_id: registry.get_check(check_id) for check_id in ids}
    variant_of = {c.id: learner.variant(c.exercise, who) for c in checks.values()}
    with KEY:
        variants = {exercise: plain.encode(learner.draw(exercise, who)) for exercise in registry.exercises()}
        cases, broken = {}, {}
        for check_id, check in checks.items():
            try:
                cases[check_id] = judge.cases_for(check, variant_of[check_id])
            except judge.CheckBroken as error:
                broken[check_id] = str(error)
    run = Run(spec)
    watchdog = threading.Timer(run.limits.wall_seconds, run.kill)
    watchdog.start()
    try:
        run.execute(variants, cases)
    finally:
        watchdog.cancel()
    nbformat.write(run.nb, spec["executed"])
    verdicts = {}
    with KEY:
        for check_id, check in checks.items():
            if check_id in broken:
                verdicts[check_id] = judge.Verdict(
                    check_id, judge.ERROR, 0, check.points, broken[check_id], check.hidden
                )
            elif check_id in run.answers:
                verdicts[check_id] = judge.judge(check, variant_of[check_id], cases[check_id], run.answers[check_id])
    return {
        "verdicts": {k: vars(v) for k, v in verdicts.items()},
        "cells": {str(k): v for k, v in run.cells.items()},
        "collected": run.collected,
        "stop": run.stop,
        "killed": run.killed,
    }
