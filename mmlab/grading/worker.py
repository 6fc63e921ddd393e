"""The grader's child process: run one assembled notebook under limits, and log what happened.

``python -m mmlab.grading.worker SPEC.json`` limits its own address space (the kernel it
starts inherits the limit), starts a kernel with nbclient in the scratch folder, and runs
the code cells one by one with a per-cell timeout inside a whole-notebook deadline. Each
cell's start and end go to a JSON-lines log as they happen, with the size of the check
results file at that moment, so the grader can tell which check results a cell wrote, and
what happened, even if this process is killed half-way. Outputs are capped per cell, so an
output flood cannot exhaust memory or disk.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path

# nbformat imports jsonschema, which imports rfc3987_syntax when installed; that builds a
# grammar for most of a second, once per graded notebook. Nothing here validates URIs.
sys.modules.setdefault("rfc3987_syntax", None)

import nbformat  # noqa: E402
from nbclient import NotebookClient  # noqa: E402
from nbclient.exceptions import DeadKernelError  # noqa: E402

TIMEOUT_ENAME = "CellTimeout"
PROBE_SECONDS = 3


class EventLog:
    """Appends one JSON object per line, flushed at once (the reader may be a killer)."""

    def __init__(self, path: str):
        self.file = open(path, "a", encoding="utf-8")  # noqa: SIM115 - open for the process's life

    def write(self, **event) -> None:
        self.file.write(json.dumps(event) + "\n")
        self.file.flush()


class LimitedClient(NotebookClient):
    """An nbclient that keeps at most ``output_bytes`` of output per cell and remembers replies."""

    def __init__(self, nb, *, output_bytes: int, **kwargs):
        super().__init__(nb, on_cell_executed=self._remember, **kwargs)
        self.output_bytes = output_bytes
        self.used: dict[int, int] = {}
        self.replies: dict[int, dict] = {}

    def _remember(self, cell, cell_index, execute_reply):
        self.replies[cell_index] = execute_reply["content"] if execute_reply else {}

    def output(self, outs, msg, display_id, cell_index):
        content = msg["content"]
        size = len(content.get("text", "")) + sum(len(str(v)) for v in content.get("data", {}).values())
        used = self.used.get(cell_index, 0) + size
        if used > self.output_bytes:
            if self.used.get(cell_index, 0) <= self.output_bytes:
                outs.append(
                    nbformat.v4.new_output(
                        "stream",
                        name="stdout",
                        text=f"\n[The grader cut this cell's output here: it passed {self.output_bytes} characters.]\n",
                    )
                )
                self.used[cell_index] = self.output_bytes + 1
            return None
        self.used[cell_index] = used
        return super().output(outs, msg, display_id, cell_index)

    def kernel_responds(self) -> bool:
        """True if the kernel answers a trivial request within PROBE_SECONDS (after a timeout)."""
        self.timeout, self.shell_timeout_interval = PROBE_SECONDS, 1
        return self.wait_for_reply(self.kc.execute("pass", store_history=False)) is not None


def limit_resources(memory_bytes: int, file_bytes: int) -> None:
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    resource.setrlimit(resource.RLIMIT_FSIZE, (file_bytes, file_bytes))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def run(spec: dict, log: EventLog) -> None:
    nb = nbformat.read(spec["notebook"], as_version=4)
    results = Path(spec["results"])
    cell_timeout = spec["cell_timeout"]
    client = LimitedClient(
        nb,
        output_bytes=spec["output_bytes"],
        kernel_name="python3",
        allow_errors=True,
        interrupt_on_timeout=True,
        error_on_timeout={"ename": TIMEOUT_ENAME, "evalue": "", "traceback": []},
        iopub_timeout=2,
        shutdown_kernel="immediate",
        resources={"metadata": {"path": spec["cwd"]}},
    )
    deadline = time.monotonic() + spec["notebook_timeout"]
    try:
        with client.setup_kernel():
            Path(spec["kernel_pid"]).write_text(str(client.km.provisioner.pid))
            log.write(event="kernel-started")
            _run_cells(client, nb, results, cell_timeout, deadline, log)
    except DeadKernelError:
        pass  # logged by _run_cells
    except Exception as error:  # the kernel never started, or nbclient itself failed
        log.write(event="kernel-failed", message=f"{type(error).__name__}: {error}")
    finally:
        nbformat.write(nb, spec["executed"])


def _run_cells(client, nb, results: Path, cell_timeout: float, deadline: float, log: EventLog) -> None:
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code" or not cell.source.strip():
            continue
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            log.write(event="deadline", index=index)
            return
        limit = "cell" if cell_timeout <= remaining else "notebook"
        client.timeout = max(1, int(min(cell_timeout, remaining)))
        log.write(event="start", index=index, offset=_size(results))
        try:
            client.execute_cell(cell, index)
        except DeadKernelError:
            log.write(event="died", index=index, offset=_size(results))
            raise
        reply = client.replies.get(index, {})
        status = "ok" if reply.get("status") == "ok" else "error"
        ename, evalue = reply.get("ename"), reply.get("evalue")
        if ename == TIMEOUT_ENAME:
            status, evalue = "timeout", f"stopped after {client.timeout} s (the {limit} time limit)"
            cell.outputs.append(nbformat.v4.new_output("error", ename=ename, evalue=evalue, traceback=[]))
        log.write(event="end", index=index, offset=_size(results), status=status, ename=ename, evalue=evalue)
        if status == "timeout" and not client.kernel_responds():
            log.write(event="stuck", index=index)
            return


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def main(argv: list[str]) -> int:
    spec = json.loads(Path(argv[1]).read_text(encoding="utf-8"))
    limit_resources(spec["memory_bytes"], spec["file_bytes"])
    log = EventLog(spec["log"])
    try:
        run(spec, log)
    except BaseException as error:  # report, never crash silently: the grader reads the log
        log.write(event="worker-error", message=f"{type(error).__name__}: {error}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
