"""``mmlab doctor``: one screen that says what this machine has for the course, and what to
do about whatever is missing.

It works in three steps so that the judgement can be tested without the machine:
``gather()`` collects the facts (package versions, where the diagram renderer is, the
transparent hugepage mode, the effective user); ``diagnose(facts)`` turns them into
findings; ``render(findings)`` lays them out. Only ``gather`` looks at the machine, and it
only reads (``/sys/kernel/mm/transparent_hugepage/enabled`` among others), never writes.

The findings are grouped by what they are needed for: the course itself, the tests, the
live lab (which runs the course's scenarios on this machine's kernel), and the live lab on
other kernels (``mmlab live --kernel``: Debian's kernels booted under QEMU). Only a
missing course prerequisite makes ``mmlab doctor`` exit with status 1. The diagrams need
no system Graphviz: graphviz-pure, a dependency, draws them.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import re
import shutil
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from ..grading.sandbox import sandbox_problem
from .jupyter import COURSE_DIR

THP_ENABLED = Path("/sys/kernel/mm/transparent_hugepage/enabled")
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
MIN_PYTHON = (3, 10)

COURSE, GRADING, TESTS, LIVE, VM = "Course", "Grading", "Tests", "Live lab", "Other kernels"

# Findings that the pytest markers ``live``, ``browser`` and ``vm`` depend on.
LIVE_LAB_NEEDS = ("transparent hugepages", "root")
BROWSER_TESTS_NEED = ("playwright", "chromium")
VM_TESTS_NEED = ("qemu", "kernel packages")


@dataclass(frozen=True)
class Facts:
    """What ``gather`` saw on this machine; tests build their own."""

    python: tuple[int, int, int]
    executable: str
    platform: str  # sys.platform: "linux", "darwin", ...
    kernel: str  # the running kernel's release, as uname -r says
    euid: int
    mmlab_version: str | None  # None when mmlab is not installed in this Python
    requirements: tuple[str, ...]  # mmlab's declared requirements, as in its metadata
    installed: Mapping[str, str]  # normalized distribution name -> installed version
    renderer: str | None  # path of the program that draws the diagrams (viz.render.program())
    thp: str | None  # the text of THP_ENABLED; None when it cannot be read
    chromium: str | None  # path of a Chromium-compatible browser
    course_dir: Path  # where mmlab lab looks for the notebooks
    course_found: bool  # whether that folder exists
    qemu: str | None  # path of qemu-system-x86_64
    vm_kernels: Mapping[str, str]  # Debian kernel version -> its package (cached or in apt's lists), or why not
    sandbox_problem: str | None = None  # why mmlab grade cannot sandbox notebooks here; None when it can


@dataclass(frozen=True)
class Finding:
    """One line of the screen: a thing the course needs, whether it is there, what to do."""

    section: str
    name: str
    ok: bool
    detail: str
    advice: str = ""
    blocking: bool = False  # when not ok, the course cannot start


def normalize(name: str) -> str:
    """A distribution name in the normalized form of PEP 503 (``Jupyter_Lab`` -> ``jupyter-lab``)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def find_chromium(env: Mapping[str, str] = os.environ) -> str | None:
    """The browser for the browser tests: ``$MMLAB_CHROMIUM`` if set, else the first of
    CHROMIUM_NAMES on PATH."""
    if env.get("MMLAB_CHROMIUM"):
        return shutil.which(env["MMLAB_CHROMIUM"])
    return next(filter(None, map(shutil.which, CHROMIUM_NAMES)), None)


def parse_thp_mode(text: str) -> str | None:
    """The selected mode in THP_ENABLED's text (``always [madvise] never`` -> ``madvise``)."""
    match = re.search(r"\[(\w+)\]", text)
    return match.group(1) if match else None


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except OSError:
        return None


def gather() -> Facts:
    """The facts of this Python and this machine. Reads only."""
    try:
        mmlab_version = importlib.metadata.version("mmlab")
        requirements = tuple(importlib.metadata.requires("mmlab") or ())
    except importlib.metadata.PackageNotFoundError:
        mmlab_version, requirements = None, ()
    from ..viz.render import program

    return Facts(
        python=tuple(sys.version_info[:3]),
        executable=sys.executable,
        platform=sys.platform,
        kernel=os.uname().release,
        euid=os.geteuid(),
        mmlab_version=mmlab_version,
        requirements=requirements,
        installed={normalize(d.metadata["Name"]): d.version for d in importlib.metadata.distributions()},
        renderer=program(),
        thp=_read(THP_ENABLED),
        chromium=find_chromium(),
        course_dir=COURSE_DIR,
        course_found=COURSE_DIR.is_dir(),
        qemu=shutil.which("qemu-system-x86_64"),
        vm_kernels=_vm_kernels(),
        sandbox_problem=sandbox_problem(),
    )


def _vm_kernels() -> dict[str, str]:
    """For each kernel the VM tests boot: its package, "cached" when already unpacked, or
    the reason apt cannot name one."""
    from ..live.vm import debian

    found = {}
    for version in debian.TESTED:
        try:
            package = debian.package_for(version)
        except debian.KernelUnavailable as e:
            found[version] = f"not found: {str(e).split(':')[0]}"
            continue
        cached = (debian.cache_dir() / "kernels" / package / "vmlinuz").exists()
        found[version] = package + (" (cached)" if cached else "")
    return found


def install_hint(facts: Facts, *, apt: str, brew: str) -> str:
    """The command that installs a system package on this kind of machine."""
    if facts.platform == "darwin":
        return f"brew install {brew}"
    return ("" if facts.euid == 0 else "sudo ") + f"apt-get install {apt}"


def diagnose_python(facts: Facts) -> Finding:
    version = ".".join(map(str, facts.python))
    wanted = ".".join(map(str, MIN_PYTHON))
    return Finding(
        COURSE,
        "Python",
        facts.python[:2] >= MIN_PYTHON,
        f"{version} ({facts.executable})",
        f"mmlab needs Python {wanted} or newer: install one, then PYTHON=/path/to/it ./setup.sh course",
        blocking=True,
    )


def diagnose_packages(facts: Facts) -> list[Finding]:
    """A finding for mmlab itself and for each package mmlab declares, in its section."""
    pip = f"{facts.executable} -m pip install"
    if facts.mmlab_version is None:
        return [
            Finding(
                COURSE,
                "mmlab",
                False,
                "not installed in this Python",
                f"in the mmlab folder run ./setup.sh course, or {pip} -e '.[test]'",
                blocking=True,
            )
        ]
    from packaging.requirements import Requirement  # a dependency of mmlab's own dependencies

    findings = [Finding(COURSE, "mmlab", True, facts.mmlab_version)]
    for text in facts.requirements:
        requirement = Requirement(text)
        marker = requirement.marker
        if marker is None or marker.evaluate({"extra": ""}):
            section = COURSE
        elif marker.evaluate({"extra": "test"}):
            section = TESTS
        else:
            continue  # a requirement for another extra or another platform
        version = facts.installed.get(normalize(requirement.name))
        wanted = str(requirement.specifier)
        fits = version is not None and requirement.specifier.contains(version, prereleases=True)
        if version is None:
            detail = "not installed"
        else:
            detail = version if fits else f"{version}, but mmlab needs {wanted}"
        findings.append(
            Finding(
                section,
                requirement.name,
                fits,
                detail,
                f"{pip} '{requirement.name}{wanted}'",
                blocking=section == COURSE,
            )
        )
    return findings


def diagnose_course_dir(facts: Facts) -> Finding:
    return Finding(
        COURSE,
        "course notebooks",
        facts.course_found,
        str(facts.course_dir) if facts.course_found else f"no folder {facts.course_dir}",
        "mmlab finds the course beside its source: install it from a clone (pip install -e .)",
        blocking=True,
    )


def diagnose_renderer(facts: Facts) -> Finding:
    from ..viz.render import PROGRAM

    if facts.renderer is None:
        return Finding(COURSE, "diagrams", False, f"{PROGRAM} not found: diagrams show as DOT text",
                       f"in the mmlab folder: {facts.executable} -m pip install -e .  (mmlab's dependencies again)")
    return Finding(COURSE, "diagrams", True, f"drawn by {facts.renderer}")


def diagnose_sandbox(facts: Facts) -> Finding:
    name = "sandbox (bubblewrap)"
    if facts.sandbox_problem:
        hint = "sudo apt-get install bubblewrap" if facts.platform.startswith("linux") else "grade on Linux"
        return Finding(
            GRADING, name, False, f"mmlab grade will refuse learners' notebooks: {facts.sandbox_problem}", hint
        )
    return Finding(GRADING, name, True, "each graded notebook runs in its own sandbox")


def diagnose_chromium(facts: Facts) -> Finding:
    if facts.platform == "darwin":
        hint = (
            "install Chromium or Google Chrome and set MMLAB_CHROMIUM to its binary, e.g. "
            "/Applications/Chromium.app/Contents/MacOS/Chromium"
        )
    else:
        hint = install_hint(facts, apt="chromium", brew="chromium") + " (or set MMLAB_CHROMIUM to a browser)"
    if facts.chromium is None:
        return Finding(TESTS, "chromium", False, "not found: the browser tests will not run", hint)
    return Finding(TESTS, "chromium", True, facts.chromium)


def diagnose_thp(facts: Facts) -> Finding:
    name = "transparent hugepages"
    if facts.thp is None:
        where = "this kernel has none" if facts.platform.startswith("linux") else "this is not Linux"
        return Finding(
            LIVE,
            name,
            False,
            f"not available: {where}",
            "the live lab needs Linux with transparent hugepages; the model runs every scenario anyway",
        )
    mode = parse_thp_mode(facts.thp)
    return Finding(
        LIVE,
        name,
        mode in ("always", "madvise"),
        f"{mode} ({THP_ENABLED})",
        f"as root: echo madvise > {THP_ENABLED}  (mmlab never changes it)",
    )


def diagnose_root(facts: Facts) -> Finding:
    return Finding(
        LIVE,
        "root",
        facts.euid == 0,
        "running as root" if facts.euid == 0 else f"running as user id {facts.euid}",
        "the live lab reads page frame numbers and /proc/kpageflags, which need root: run it with sudo",
    )


def diagnose_qemu(facts: Facts) -> Finding:
    return Finding(
        VM,
        "qemu",
        facts.qemu is not None,
        facts.qemu or "qemu-system-x86_64 is not on PATH",
        install_hint(facts, apt="qemu-system-x86", brew="qemu") + " (about 18 MB)",
    )


def diagnose_vm_kernels(facts: Facts) -> Finding:
    missing = [v for v, package in facts.vm_kernels.items() if package.startswith("not found")]
    return Finding(
        VM,
        "kernel packages",
        not missing,
        ", ".join(f"{v}: {package}" for v, package in facts.vm_kernels.items()),
        ("" if facts.euid == 0 else "sudo ") + "apt-get update, with Debian bookworm in apt's sources (it has "
        "6.1 and 6.12); or give mmlab live --kernel a .deb or a vmlinuz path",
    )


def diagnose(facts: Facts) -> list[Finding]:
    """Every finding, in the order the screen shows them."""
    return [
        diagnose_python(facts),
        *diagnose_packages(facts),
        diagnose_course_dir(facts),
        diagnose_renderer(facts),
        diagnose_sandbox(facts),
        diagnose_chromium(facts),
        diagnose_thp(facts),
        diagnose_root(facts),
        diagnose_qemu(facts),
        diagnose_vm_kernels(facts),
    ]


def unmet(findings: Iterable[Finding], names: Iterable[str]) -> str | None:
    """Why the findings called ``names`` are not all ok, in one line; None when they are."""
    wanted = set(names)
    problems = [f"{f.name}: {f.detail}" for f in findings if f.name in wanted and not f.ok]
    return "; ".join(problems) or None


def render(findings: Iterable[Finding], kernel: str) -> str:
    """The doctor's screen: findings by section, advice under each one that is not ok, a verdict."""
    findings = list(findings)
    titles = {
        COURSE: COURSE,
        GRADING: f"{GRADING} (mmlab grade, for instructors)",
        TESTS: f"{TESTS} (./setup.sh test)",
        LIVE: f"{LIVE} (this kernel: Linux {kernel})",
        VM: f"{VM} (mmlab live --kernel: Debian's kernels under QEMU)",
    }
    lines = ["mmlab doctor: what this machine has for the course", ""]
    for section, title in titles.items():
        lines.append(title)
        for finding in findings:
            if finding.section == section:
                lines.append(f"  {'ok' if finding.ok else 'TODO':4}  {finding.name}: {finding.detail}")
                if not finding.ok:
                    lines.append(f"        -> {finding.advice}")
        lines.append("")
    if any(f.blocking and not f.ok for f in findings):
        lines.append("The course cannot start yet: do the TODO items under Course (./setup.sh course does them).")
    elif any(not f.ok for f in findings):
        lines.append("The course is ready. The TODO items above are optional: do them for what they enable.")
    else:
        lines.append("Everything is ready: the course, the tests and the live lab, here and on other kernels.")
    return "\n".join(lines)


def configure(parser: argparse.ArgumentParser) -> None:
    """``mmlab doctor`` takes no options."""


def run(args: argparse.Namespace) -> int:
    facts = gather()
    findings = diagnose(facts)
    print(render(findings, facts.kernel))
    return 1 if any(f.blocking and not f.ok for f in findings) else 0
