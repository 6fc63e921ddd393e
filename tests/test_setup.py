"""setup.sh's apt-get step when another apt-get or dpkg holds the package lock (a fresh
Ubuntu running unattended-upgrades): it must wait, say so, retry, and give up after a
bounded time with what to do. setup.sh is sourced (which only defines its functions) and
``apt_install`` runs with a stand-in apt-get first on PATH, which records its calls and
answers each as told (the lock held, a package unknown, success): the machine's real
packages are never touched.
"""

import os
import subprocess
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent

# Call N answers as the Nth word of $ANSWERS says (the last word answers every later call).
FAKE_APT_GET = """#!/bin/sh
echo "$*" >> "$FAKE_STATE/args"
calls=$(wc -l < "$FAKE_STATE/args")
answer=$(echo $ANSWERS | tr ' ' '\\n' | sed -n "${calls}p")
[ -n "$answer" ] || answer=$(echo $ANSWERS | tr ' ' '\\n' | tail -n 1)
case $answer in
  locked)
    echo "E: Could not get lock /var/lib/dpkg/lock-frontend. It is held by process 4242 (unattended-upgr)" >&2
    echo "E: Unable to acquire the dpkg frontend lock (/var/lib/dpkg/lock-frontend), is another process using it?" >&2
    exit 100 ;;
  unknown)
    echo "E: Unable to locate package chromium" >&2
    exit 100 ;;
esac
echo "Setting up the packages"
"""
# Only reached when the tests do not run as root: sudo -n COMMAND runs COMMAND as this user.
FAKE_SUDO = """#!/bin/sh
[ "$1" = -n ] && shift
exec "$@"
"""


def apt_install(tmp_path, answers: str, wait: int) -> tuple[subprocess.CompletedProcess, list[str]]:
    bin_dir, state = tmp_path / "bin", tmp_path / "state"
    bin_dir.mkdir()
    state.mkdir()
    for name, text in (("apt-get", FAKE_APT_GET), ("sudo", FAKE_SUDO)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "FAKE_STATE": str(state),
           "ANSWERS": answers, "MMLAB_APT_LOCK_WAIT": str(wait)}
    ran = subprocess.run(["bash", "-c", "source ./setup.sh && apt_install chromium"], cwd=PROJECT, env=env,
                         capture_output=True, text=True, timeout=120)
    args = (state / "args").read_text().splitlines() if (state / "args").exists() else []
    return ran, args


def test_a_held_lock_is_waited_for_with_a_message_then_the_install_goes_on(tmp_path):
    ran, calls = apt_install(tmp_path, "locked locked ok", wait=60)
    assert ran.returncode == 0, ran.stderr
    assert ran.stderr.count("holds the package lock; waiting up to 60s") == 1
    assert "Setting up the packages" in ran.stderr
    assert len(calls) == 3 and all(c.endswith("install -y -q --no-install-recommends chromium") for c in calls)
    assert all(c.startswith("-o DPkg::Lock::Timeout=") for c in calls)  # apt-get itself waits too


def test_a_lock_never_released_is_given_up_after_the_bound_with_what_to_do(tmp_path):
    start = time.monotonic()
    ran, calls = apt_install(tmp_path, "locked", wait=3)
    took = time.monotonic() - start
    assert ran.returncode != 0
    assert "still holds the package lock after 3s" in ran.stderr and "MMLAB_APT_LOCK_WAIT=SECONDS" in ran.stderr
    assert 3 <= took < 20
    assert len(calls) >= 2 and not any(" update" in f" {c}" for c in calls)  # no pointless update after it


def test_an_unknown_package_refreshes_the_package_lists_once_without_waiting(tmp_path):
    ran, calls = apt_install(tmp_path, "unknown ok ok", wait=60)
    assert ran.returncode == 0, ran.stderr
    assert [c.split()[2] for c in calls] == ["install", "update", "install"]
    assert "waiting" not in ran.stderr
