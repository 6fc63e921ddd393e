#!/usr/bin/env bash
# Set up mmlab on this machine, then open the course or run every test.
#
#   ./setup.sh course [mmlab lab options]   open the course in JupyterLab
#   ./setup.sh test [pytest options]        run ruff, then every test
#   ./setup.sh bench                        run the benchmarks and print their figures
#
# Each creates .venv in this folder (or reuses it) and installs mmlab into it with its test
# tools, again only when pyproject.toml has changed since; pip brings everything the course
# needs, diagrams included. System tools come from apt-get when this user is root or may use
# sudo without a password: bubblewrap (the sandbox mmlab grade runs notebooks in) always, and
# for the tests Chromium and QEMU (the VM tests boot Debian's 6.1 and 6.12 kernels, which
# they fetch with apt-get download into ~/.cache/mmlab). Where that is not possible the script
# prints the command to run and carries on; with CI=true a missing tool is an error instead.
# When another apt-get or dpkg holds the package lock (unattended-upgrades, say), apt-get
# waits for it, up to MMLAB_APT_LOCK_WAIT seconds (default 600), saying so, then retries.
# Nothing is written outside this folder and .venv, apart from what apt-get installs.
set -euo pipefail

# usage STATUS: print how to call this script (to stderr unless STATUS is 0) and exit.
usage() {
  [ "$1" -eq 0 ] || exec >&2
  cat <<'EOF'
usage: ./setup.sh course [mmlab lab options]   open the course in JupyterLab
       ./setup.sh test [pytest options]        run ruff, then every test
       ./setup.sh bench                        run the benchmarks
Options after "course" go to "mmlab lab" (e.g. --no-browser --port 8890);
after "test" they go to pytest (e.g. -x tests/test_cli.py).
EOF
  exit "$1"
}

say() { printf 'setup.sh: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }
have() { command -v "$1" >/dev/null 2>&1; }

# may_be_root: true when this user can run commands as root without being asked anything.
may_be_root() { [ "$(id -u)" -eq 0 ] || { have sudo && sudo -n true 2>/dev/null; }; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo -n "$@"; fi
}

# apt_get ARG...: run apt-get as root, its output shown as it comes. While another apt-get
# or dpkg holds the package lock, wait for it (apt-get's own DPkg::Lock::Timeout, and
# retries every few seconds for the locks that option does not cover), up to
# MMLAB_APT_LOCK_WAIT seconds in all; then give up, say what to do, and return 75.
apt_get() {
  local wait=${MMLAB_APT_LOCK_WAIT:-600} started=$SECONDS left output status told=
  while true; do
    left=$((wait - (SECONDS - started)))
    ((left > 0)) || left=0
    status=0
    output=$(as_root env DEBIAN_FRONTEND=noninteractive apt-get -o "DPkg::Lock::Timeout=$left" "$@" 2>&1 \
      | tee /dev/stderr) || status=$?
    if [ "$status" -eq 0 ] || ! grep -qiE 'could not get lock|unable to (acquire|lock)' <<<"$output"; then
      return "$status"
    fi
    if ((SECONDS - started >= wait)); then
      say "another apt-get or dpkg still holds the package lock after ${wait}s; run this again when it has finished"
      say "(or let it wait longer: MMLAB_APT_LOCK_WAIT=SECONDS ./setup.sh ${action:-course})"
      return 75
    fi
    [ -n "$told" ] || say "another apt-get or dpkg (unattended-upgrades?) holds the package lock; waiting up to ${wait}s"
    told=yes
    sleep $((left < 2 ? left : 2))
  done
}

# apt_install PACKAGE...: install Debian packages, refreshing the package lists only when
# the install fails without it (and not for a lock that was never released). Fails when
# apt-get or root access is not available.
apt_install() {
  have apt-get && may_be_root || return 1
  say "installing $* with apt-get"
  local install=(install -y -q --no-install-recommends "$@") status=0
  apt_get "${install[@]}" || status=$?
  case $status in
    0) ;;
    75) return 1 ;;
    *) apt_get update -q && apt_get "${install[@]}" ;;
  esac
}

# sudo_prefix: "sudo " unless we are root, for commands printed to the user.
sudo_prefix() { [ "$(id -u)" -eq 0 ] || printf 'sudo '; }

# need_tool PURPOSE HINT APT_PACKAGE COMMAND...: make sure one of COMMANDs is on PATH,
# installing APT_PACKAGE if possible; otherwise print HINT and carry on (stop under CI).
need_tool() {
  local purpose=$1 hint=$2 package=$3 command
  shift 3
  for command in "$@"; do have "$command" && return 0; done
  if [ "$(uname -s)" = Linux ] && apt_install "$package"; then
    for command in "$@"; do have "$command" && return 0; done
  fi
  if [ "${CI:-}" = true ]; then
    die "$1 is missing ($purpose). Install it with: $hint"
  fi
  say "$1 is missing ($purpose). Install it with: $hint"
  say "carrying on without it."
}

# A Python of at least 3.10 with venv support: $PYTHON if given, else python3.
good_python() { "$1" -c 'import sys, venv, ensurepip; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; }

find_python() {
  local python=${PYTHON:-python3}
  if have "$python" && good_python "$python"; then echo "$python"; return; fi
  if [ -z "${PYTHON:-}" ] && [ "$(uname -s)" = Linux ] && apt_install python3 python3-venv \
    && good_python python3; then
    echo python3; return
  fi
  die "mmlab needs Python 3.10 or newer with the venv module, and $python is not that.
  Debian/Ubuntu: $(sudo_prefix)apt-get install python3 python3-venv
  macOS: brew install python@3.12, then: PYTHON=python3.12 ./setup.sh $action
  Or name any suitable Python: PYTHON=/path/to/python3 ./setup.sh $action"
}

ensure_venv() {
  if [ -x .venv/bin/python ] && .venv/bin/python -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
    return
  fi
  local python
  python=$(find_python)
  say "creating the virtual environment .venv with $("$python" --version 2>&1)"
  "$python" -m venv --clear .venv
}

# Install mmlab (editable) with its test tools, unless the copy of pyproject.toml made at the
# last successful install says nothing has changed since.
ensure_mmlab() {
  local stamp=.venv/mmlab-installed-pyproject.toml
  if [ -x .venv/bin/mmlab ] && cmp -s pyproject.toml "$stamp"; then
    return
  fi
  say "installing mmlab and its dependencies into .venv (the first time takes a few minutes)"
  PIP_DISABLE_PIP_VERSION_CHECK=1 .venv/bin/python -m pip install --no-cache-dir -e '.[test]'
  cp pyproject.toml "$stamp"
}

need_bubblewrap() {
  [ "$(uname -s)" = Linux ] || return 0
  need_tool "mmlab grade runs learners' notebooks in its sandbox" "$(sudo_prefix)apt-get install bubblewrap" \
    bubblewrap bwrap
}

need_qemu() {
  local hint
  case "$(uname -s)" in
    Darwin) hint="brew install qemu (the VM tests also need apt for Debian's kernels: they skip here)" ;;
    *) hint="$(sudo_prefix)apt-get install qemu-system-x86" ;;
  esac
  need_tool "the VM tests boot other kernels with it" "$hint" qemu-system-x86 qemu-system-x86_64
  # The VM tests fetch Debian's kernel packages by name: apt's lists must know them, and
  # under CI be fresh (a superseded kernel package is soon gone from the archive).
  if have apt-cache && may_be_root \
    && { [ "${CI:-}" = true ] || [ -z "$(apt-cache pkgnames linux-image-6.12 2>/dev/null)" ]; }; then
    say "refreshing apt's package lists (the VM tests look up Debian's kernel packages in them)"
    apt_get update -q || say "apt-get update failed: the VM tests will say what is missing"
  fi
}

need_chromium() {
  if [ -n "${MMLAB_CHROMIUM:-}" ]; then
    [ -x "$MMLAB_CHROMIUM" ] || die "MMLAB_CHROMIUM=$MMLAB_CHROMIUM is not an executable file"
    return
  fi
  local hint
  case "$(uname -s)" in
    Darwin) hint="brew install --cask chromium, then export MMLAB_CHROMIUM=/Applications/Chromium.app/Contents/MacOS/Chromium" ;;
    *) hint="$(sudo_prefix)apt-get install chromium (or set MMLAB_CHROMIUM to a Chromium or Chrome binary)" ;;
  esac
  need_tool "the browser tests need it" "$hint" chromium chromium chromium-browser google-chrome google-chrome-stable
}

# main ACTION [ARG...]: what ./setup.sh does. (Sourcing this file only defines the functions,
# which is how tests/test_setup.py calls them.)
main() {
  action=${1:-}
  case "$action" in
    course | test | bench) shift ;;
    -h | --help) usage 0 ;;
    *) usage 2 ;;
  esac

  cd "$(dirname "$0")"
  ensure_venv
  ensure_mmlab
  need_bubblewrap

  case "$action" in
    course)
      exec .venv/bin/mmlab lab "$@"
      ;;
    test)
      need_chromium
      need_qemu
      say "ruff check"
      .venv/bin/ruff check .
      say "pytest"
      exec .venv/bin/python -m pytest "$@"
      ;;
    bench)
      ran=
      for benchmark in benchmarks/*.py; do
        [ -f "$benchmark" ] || continue
        say "$benchmark"
        .venv/bin/python "$benchmark"
        ran=yes
      done
      [ -n "$ran" ] || say "there are no benchmarks yet (benchmarks/*.py)"
      ;;
  esac
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  main "$@"
fi
