"""The sandbox a graded kernel runs in: what it can see and do, that nothing of it survives, and
that grading refuses to run untrusted work without it."""

import asyncio
import gc
import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat
import pytest

import mmlab
from mmlab.grading import cli_grade, registry, sandbox, worker
from mmlab.grading.assemble import Slot
from mmlab.grading.notebooks import CHECK, SOLUTION
from mmlab.grading.outcomes import Interpreter
from mmlab.grading.registry import register

register("sandbox-never", points=1, expects="nothing", section="nowhere")(lambda v: 1)

needs_sandbox = pytest.mark.skipif(
    sandbox.sandbox_problem() is not None, reason=f"no sandbox here: {sandbox.sandbox_problem()}"
)
MARKER = "313.25"  # an argument no other process on the machine uses
PROBE = r"""
import json, os, socket
seen = {"uid": os.getuid(), "pid": os.getpid(), "uid_map": open("/proc/self/uid_map").read().split()}
grading = os.path.join(os.path.dirname(__import__("mmlab").__file__), "grading")
seen["grading"] = sorted(os.listdir(grading))
seen["project"] = sorted(os.listdir(os.path.dirname(os.path.dirname(grading))))
try:
    socket.create_connection(("127.0.0.1", 22), timeout=1)
    seen["network"] = "open"
except OSError as error:
    seen["network"] = type(error).__name__
for name, path in (("package", os.path.join(grading, "x")), ("home", os.path.join(os.environ["HOME"], "x"))):
    try:
        open(path, "w").write("x")
        seen[name] = "writable"
    except OSError as error:
        seen[name] = type(error).__name__
try:
    with open("/tmp/fill", "wb") as f:
        for _ in range(100):
            f.write(bytes(2**20))
    seen["disk"] = "unlimited"
except OSError as error:
    seen["disk"] = type(error).__name__
print(json.dumps(seen))
"""


def leftovers():
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if MARKER.encode() in cmdline.read_bytes():
                found.append(cmdline.parent.name)
        except OSError:
            continue
    return found


@needs_sandbox
def test_a_sandboxed_kernel_is_nobody_with_no_network_no_key_and_a_small_private_disk():
    uid = sandbox.UIDS.take()
    limits = sandbox.Limits(disk_mb=16)
    try:
        with tempfile.TemporaryDirectory() as sockets:
            if uid is not None:
                os.chown(sockets, uid, uid)
            command = sandbox.sandboxed(
                [sys.executable, "-c", PROBE], sockets=Path(sockets), limits=limits, uid=uid, unsafe=False
            )
            env = sandbox.kernel_environment(home=sandbox.HOME, extra={})
            done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    finally:
        sandbox.UIDS.give_back(uid)
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    assert seen["uid"] != 0 and seen["uid"] == (uid if uid is not None else os.getuid())
    assert seen["uid_map"][:2] == [str(seen["uid"])] * 2  # its own user namespace, itself only
    assert seen["pid"] < 10  # its own PID namespace
    assert seen["network"] == "ConnectionRefusedError"  # not even the loopback device is up
    assert seen["grading"] == sorted(sandbox.PUBLIC)  # no answer key, no grader
    assert set(seen["project"]) <= {"mmlab", ".venv"}  # no solutions/, no .git, no submissions
    assert seen["package"] == "OSError" and seen["home"] == "writable"
    assert seen["disk"] == "OSError"  # 100 MiB do not fit in 16


def notebook(*sources):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(s, id=f"c{n}") for n, s in enumerate(sources)]
    return nb


def run(nb, limits, tmp_path, unsafe=False):
    path = tmp_path / "notebook.ipynb"
    nbformat.write(nb, path)
    uid = None if unsafe else sandbox.UIDS.take()
    spec = {
        "notebook": str(path),
        "checks": {},
        "limits": vars(limits),
        "uid": uid,
        "unsafe": unsafe,
        "scratch": str(tmp_path),
        "learner": "ada",
    }
    try:
        run = worker.Run(spec)
        run.execute({}, {})
    finally:
        sandbox.UIDS.give_back(uid)
    return run


@pytest.mark.parametrize("unsafe", [False, True], ids=["sandbox", "unsafe"])
def test_no_process_of_a_run_survives_it(unsafe, tmp_path):
    """A child in its own session, behind a loop that ignores the interrupt, dies with the run."""
    if not unsafe and sandbox.sandbox_problem():
        pytest.skip(f"no sandbox here: {sandbox.sandbox_problem()}")
    hang = (
        "import signal, subprocess\n"
        f"subprocess.Popen(['sleep', '{MARKER}'], start_new_session={not unsafe})\n"
        "signal.signal(signal.SIGINT, signal.SIG_IGN)\n"
        "while True:\n    pass"
    )
    try:
        result = run(notebook(hang), sandbox.Limits(cell_timeout=2), tmp_path, unsafe=unsafe)
        assert result.cells[0]["status"] == "timeout" and result.stop["event"] == "stuck"
        time.sleep(0.3)
        assert leftovers() == []
    finally:
        for pid in leftovers():
            os.kill(int(pid), signal.SIGKILL)


def test_an_error_no_task_read_is_not_logged_when_the_task_is_freed(caplog):
    """Logging it would format a traceback, which parses source, at whatever moment the
    collector frees the task: in the middle of another parse, on CPython 3.11, that parse
    fails (see worker.quiet_leftovers)."""

    async def fails():
        raise RuntimeError("the client it watched is gone")

    loop = worker.quiet_leftovers()
    task = loop.create_task(fails())
    loop.run_until_complete(asyncio.wait([task]))
    with caplog.at_level(logging.DEBUG, logger="asyncio"):
        del task
        gc.collect()
    assert [r.getMessage() for r in caplog.records if r.name == "asyncio"] == []


@needs_sandbox
def test_the_kernel_interrupts_a_loop_and_the_notebook_goes_on(tmp_path):
    result = run(notebook("while True:\n    pass", "x = 1"), sandbox.Limits(cell_timeout=2), tmp_path)
    assert result.cells[0] == {
        "status": "timeout",
        "ename": "CellTimeout",
        "evalue": "stopped after 2 s (the cell time limit)",
    }
    assert result.cells[1]["status"] == "ok" and result.stop is None


def test_the_watchdog_kills_a_run_that_overruns_and_the_checks_say_so(tmp_path):
    """A run that cannot even start its kernel within the time it has is killed from outside."""
    from mmlab.grading.assemble import Assembled
    from mmlab.grading.grader import run_worker

    nb = notebook("x = 1", 'check("sandbox-never", 1)')
    slots = [
        Slot(SOLUTION, "code", "x = 1", "answer:never"),
        Slot(CHECK, "code", 'check("sandbox-never", 1)', "check:never", ("sandbox-never",)),
    ]
    limits = sandbox.Limits(notebook_timeout=0.5, startup_grace=0)
    result, killed = run_worker(tmp_path, Assembled(nb, slots), learner="ada", limits=limits, unsafe=True)
    assert killed
    interpreter = Interpreter(slots, result, killed=killed, limits=limits)
    [verdict] = interpreter.results({"sandbox-never": registry.get_check("sandbox-never")})
    assert interpreter.notebook_status() == "timeout"
    assert (verdict.status, verdict.points) == ("not-run", 0)
    assert "stopped after 0.5 s" in verdict.message


def test_without_a_sandbox_grading_refuses_unless_told_unsafe(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(
        cli_grade, "sandbox_problem", lambda: "bubblewrap (bwrap) is not installed: apt-get install bubblewrap"
    )
    (tmp_path / "subs" / "ada").mkdir(parents=True)
    parser = cli_grade.argparse.ArgumentParser()
    cli_grade.configure(parser)
    args = parser.parse_args([str(tmp_path / "subs"), "--out", str(tmp_path / "out"), "--source", str(tmp_path)])
    assert cli_grade.run(args) == 2
    err = capsys.readouterr().err
    assert "refusing to run learners' notebooks without a sandbox" in err and "apt-get install bubblewrap" in err
    assert "--unsafe" in err and not (tmp_path / "out").exists()
    args.unsafe = True
    assert cli_grade.run(args) == 2  # it goes on, to the next problem: there is nothing to grade against
    assert "no notebooks in" in capsys.readouterr().err


def test_the_sandbox_shows_only_the_learners_side_of_grading():
    grading = Path(mmlab.__file__).parent / "grading"
    public = set(sandbox.PUBLIC)
    assert {"checks", "judge.py", "worker.py", "grader.py"}.isdisjoint(public)
    for name in public - {"exercises"}:  # what the sandbox shows imports nothing it hides
        source = (grading / name).read_text()
        for hidden in ("checks", "judge", "worker", "grader", "gradebook", "outcomes"):
            assert f"from .{hidden} import" not in source or name == "answers.py" and hidden == "judge"


ORDINARY = r"""
import subprocess, sys, tempfile
from pathlib import Path
from mmlab.grading import sandbox
assert sandbox.sandbox_problem() is None, sandbox.sandbox_problem()
with tempfile.TemporaryDirectory() as sockets:
    probe = "import os, mmlab.grading; print(os.getuid(), sorted(os.listdir(os.path.dirname(mmlab.__path__[0]))))"
    limits = sandbox.Limits()
    argv = [sys.executable, "-c", probe]
    command = sandbox.sandboxed(argv, sockets=Path(sockets), limits=limits, uid=None, unsafe=False)
    env = sandbox.kernel_environment(home=sandbox.HOME, extra={})
    print(subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout)
"""


def test_an_ordinary_user_gets_the_same_sandbox(tmp_path):
    """As nobody, with the system's Python: bubblewrap makes the user namespace itself."""
    system_python = Path("/usr/bin/python3")
    if os.geteuid() != 0 or not system_python.exists() or sandbox.sandbox_problem():
        pytest.skip("needs root (to become nobody), /usr/bin/python3 and bubblewrap")
    project = Path(mmlab.__file__).resolve().parent.parent
    nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(project), "HOME": str(tmp_path)}
    tmp_path.chmod(0o777)
    done = subprocess.run(
        [*nobody, str(system_python), "-c", ORDINARY], env=env, capture_output=True, text=True, cwd=tmp_path
    )
    if "Permission denied" in done.stderr and "mmlab" in done.stderr:
        pytest.skip(f"nobody cannot read the project at {project}")
    assert done.returncode == 0, done.stderr
    uid, listing = done.stdout.split(" ", 1)
    assert uid == "65534" and "solutions" not in listing and "mmlab" in listing
