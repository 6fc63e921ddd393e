"""A graded notebook's processes never outlive it, and the watchdog stops a run that overruns."""

import os
import signal
import time
from pathlib import Path

import nbformat
import pytest

from mmlab.grading import sandbox
from mmlab.grading.assemble import Slot
from mmlab.grading.notebooks import CHECK, SOLUTION
from mmlab.grading.outcomes import Interpreter
from mmlab.grading.registry import Check

MARKER = "313.25"  # an argument no other process on the machine uses


def leftovers():
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if MARKER.encode() in cmdline.read_bytes():
                found.append(cmdline.parent.name)
        except OSError:
            continue
    return found


def notebook(*sources):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(s, id=f"c{n}") for n, s in enumerate(sources)]
    return nb


def spawn_and_hang(new_session):
    """A cell that starts a long sleep, ignores the interrupt and loops forever."""
    return (
        "import signal, subprocess\n"
        f"subprocess.Popen(['sleep', '{MARKER}'], start_new_session={new_session})\n"
        "signal.signal(signal.SIGINT, signal.SIG_IGN)\n"
        "while True:\n    pass"
    )


def run(nb, limits):
    files = sandbox.new_scratch()
    nbformat.write(nb, files.notebook)
    report = sandbox.run_notebook(files, limits, learner="ada")
    return files, report


@pytest.mark.parametrize("contained", [True, False], ids=["namespaces", "process-groups"])
def test_no_process_of_a_run_survives_it(contained, monkeypatch):
    """With namespaces even a child in its own session dies; without, the kernel's process group does."""
    if contained and not sandbox.can_contain():
        pytest.skip("this machine cannot make PID namespaces (not root, or no unshare)")
    monkeypatch.setattr(sandbox, "can_contain", lambda: contained)
    try:
        files, report = run(notebook(spawn_and_hang(new_session=contained)), sandbox.Limits(cell_timeout=2))
        assert not report.killed
        events = files.log.read_text()
        assert '"status": "timeout"' in events and '"event": "stuck"' in events
        time.sleep(0.2)
        assert leftovers() == []
    finally:
        for pid in leftovers():
            os.kill(int(pid), signal.SIGKILL)


def test_the_watchdog_kills_a_run_that_overruns_and_the_checks_say_so():
    hang = "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    pass"
    nb = notebook(hang, 'check("never", 1)')  # the worker's own time limits cannot stop it in 2 s
    limits = sandbox.Limits(cell_timeout=30, notebook_timeout=2, startup_grace=0)
    started = time.monotonic()
    files, report = run(nb, limits)
    assert report.killed and time.monotonic() - started < 15
    slots = [
        Slot(SOLUTION, "code", nb.cells[0].source, "answer:never"),
        Slot(CHECK, "code", "", "check:never", ("never",)),
    ]
    never = Check("never", 1, "never", "nothing", "nowhere", solve=lambda v: 1)
    interpreter = Interpreter(slots, files, report, limits)
    [result] = interpreter.results({"never": never})
    assert interpreter.notebook_status() == "timeout"
    assert (result.status, result.points) == ("not-run", 0)
    assert "stopped after 2 s" in result.message
