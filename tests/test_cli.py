"""The ``mmlab`` command line (the subcommand table, ``mmlab lab``, ``mmlab doctor``), the
project's pytest plugin, and the usage errors of ``setup.sh``. Nothing here starts a server."""

import dataclasses
import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mmlab.app import cli, doctor, jupyter

PROJECT = Path(__file__).resolve().parent.parent


# --- the subcommand table ---------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(cli.COMMANDS))
def test_every_subcommand_module_defines_configure_and_run(name):
    module = importlib.import_module(cli.COMMANDS[name][0])
    assert callable(module.configure) and callable(module.run)


def test_help_lists_every_subcommand(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    for name, (_, summary) in cli.COMMANDS.items():
        assert name in out and summary.split()[0] in out


@pytest.mark.parametrize(
    ("argv", "usage", "complaint"),
    [
        ([], "usage: mmlab", "required"),
        (["frobnicate"], "usage: mmlab", "invalid choice: 'frobnicate'"),
        (["--frobnicate"], "usage: mmlab", "required"),
        (["lab", "--frobnicate"], "usage: mmlab lab", "unrecognized arguments: --frobnicate"),
        (["lab", "--port", "http"], "usage: mmlab lab", "not a port number"),
        (["lab", "--port", "70000"], "usage: mmlab lab", "not a port number"),
        (["doctor", "--verbose"], "usage: mmlab doctor", "unrecognized arguments: --verbose"),
    ],
)
def test_bad_input_prints_usage_and_exits_2(argv, usage, complaint, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(argv)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(usage) and complaint in err


def test_subcommand_modules_are_imported_only_when_run():
    modules = sorted(module for module, _ in cli.COMMANDS.values())
    probe = (
        "import sys; from mmlab.app import cli; cli.build_parser(); "
        f"print([m for m in {modules!r} if m in sys.modules])"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_python_dash_m_mmlab_runs_the_cli():
    result = subprocess.run([sys.executable, "-m", "mmlab", "doctor"], capture_output=True, text=True)
    assert result.returncode in (0, 1), result.stderr
    assert "Live lab" in result.stdout


# --- mmlab lab --------------------------------------------------------------------------


def test_lab_command_serves_the_project_with_this_python_and_opens_the_landing_page():
    command = jupyter.lab_command(Path("/srv/mmlab"), python="/venv/bin/python", euid=1000, landing="START-HERE.md")
    assert command == ["/venv/bin/python", "-m", "jupyterlab", "--ServerApp.root_dir=/srv/mmlab",
                       "--LabApp.default_url=/lab/tree/START-HERE.md"]


def test_lab_command_allows_root_only_for_root():
    as_root = jupyter.lab_command(Path("/c"), python="py", euid=0)
    as_user = jupyter.lab_command(Path("/c"), python="py", euid=1000)
    assert "--allow-root" in as_root
    assert "--allow-root" not in as_user


def test_lab_command_options_with_extra_arguments_last():
    command = jupyter.lab_command(
        Path("/c"), python="py", euid=1000, port=9999, open_browser=False, extra=["--debug", "x.ipynb"]
    )
    assert {"--no-browser", "--port=9999"} <= set(command)
    assert command[-2:] == ["--debug", "x.ipynb"]


class Exec(Exception):
    """Raised by a stand-in for os.execve, carrying what would have been run."""


@pytest.fixture
def exec_calls(monkeypatch):
    def fake_execve(path, argv, env):
        raise Exec(path, argv, env)

    monkeypatch.setattr(os, "execve", fake_execve)


def test_mmlab_lab_opens_the_project_root_by_default():
    parser, _ = cli.build_parser("lab")
    assert parser.parse_args(["lab"]).dir == PROJECT


def a_project(root: Path) -> Path:
    """A made-up mmlab project: one lecture, one exercise, the landing page."""
    for name in ("course/01-x.ipynb", "exercises/01-x.ipynb", "START-HERE.md"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text('{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}'
                                 if name.endswith(".ipynb") else "# start here\n")
    return root


@pytest.mark.parametrize(("euid", "allow_root"), [(0, True), (1000, False)])
def test_mmlab_lab_hands_over_to_jupyterlab(euid, allow_root, exec_calls, tmp_path, monkeypatch, capsys):
    project = a_project(tmp_path / "project")
    monkeypatch.setattr(os, "geteuid", lambda: euid)
    monkeypatch.delenv("JUPYTER_CONFIG_DIR", raising=False)
    with pytest.raises(Exec) as handed_over:
        cli.main(["lab", "--dir", str(project), "--no-browser", "--port", "8123", "--", "--ServerApp.token=t"])
    path, argv, env = handed_over.value.args
    assert path == argv[0] == sys.executable
    assert argv[1:3] == ["-m", "jupyterlab"]
    assert f"--ServerApp.root_dir={project}" in argv
    assert "--LabApp.default_url=/lab/tree/START-HERE.md" in argv
    assert (project / "my-work" / "course" / "01-x.ipynb").is_file()  # the learner's copies, made first
    assert "copied to my-work/ for you: course/01-x.ipynb, exercises/01-x.ipynb" in capsys.readouterr().err
    assert ("--allow-root" in argv) is allow_root
    assert {"--no-browser", "--port=8123"} <= set(argv)
    assert argv[-1] == "--ServerApp.token=t"
    assert Path(env["JUPYTER_CONFIG_DIR"]).is_relative_to(project)
    settings = Path(env["JUPYTER_CONFIG_DIR"]) / jupyter.DOCMANAGER_SETTINGS
    assert json.loads(settings.read_text()) == {"defaultViewers": {"markdown": "Markdown Preview"}}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["project"]  # nothing written beside it


def test_mmlab_lab_without_jupyterlab_says_how_to_install_it(exec_calls, monkeypatch, capsys):
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "jupyterlab" else real_find_spec(name, *a),
    )
    assert cli.main(["lab"]) == 1
    err = capsys.readouterr().err
    assert "JupyterLab is not installed" in err
    assert "./setup.sh course" in err
    assert f"{sys.executable} -m pip install 'jupyterlab" in err


def test_mmlab_lab_on_a_folder_that_is_not_a_project_says_so(exec_calls, tmp_path, capsys):
    (tmp_path / "course").mkdir()
    assert cli.main(["lab", "--dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "is not an mmlab project (it has no exercises/ folder)" in err and "--dir PATH" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["course"]  # nothing written


def test_markdown_opens_rendered_unless_the_learner_chose_otherwise(tmp_path):
    assert jupyter.open_markdown_rendered(tmp_path)
    settings = tmp_path / jupyter.DOCMANAGER_SETTINGS
    settings.write_text('{"defaultViewers": {"markdown": "Editor"}}')  # changed in JupyterLab's settings
    assert not jupyter.open_markdown_rendered(tmp_path)
    assert "Editor" in settings.read_text()


def test_jupyter_home_keeps_what_the_user_chose(tmp_path):
    env = jupyter.with_jupyter_home({"IPYTHONDIR": "/mine", "PATH": "/bin"}, tmp_path)
    assert env["IPYTHONDIR"] == "/mine"
    assert env["PATH"] == "/bin"
    assert Path(env["JUPYTER_CONFIG_DIR"]).parent == tmp_path
    assert Path(env["JUPYTER_DATA_DIR"]).parent == tmp_path


# --- mmlab doctor: against this machine --------------------------------------------------


def write_executable(path: Path, script: str) -> Path:
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(0o755)
    return path


@pytest.fixture
def bare_path(tmp_path, monkeypatch):
    """A PATH holding one empty folder, where a test can put stand-in tools."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.delenv("MMLAB_CHROMIUM", raising=False)
    return bin_dir


def doctor_screen(capsys) -> tuple[int, list[str]]:
    status = cli.main(["doctor"])
    return status, capsys.readouterr().out.splitlines()


def test_doctor_names_the_program_that_draws_the_diagrams_with_no_dot_on_path(bare_path, capsys):
    from mmlab.viz import render

    _, lines = doctor_screen(capsys)
    assert render.program() is not None  # beside this Python, though not on PATH
    assert f"  ok    diagrams: drawn by {render.program()}" in lines


def test_doctor_reports_every_section_and_the_kernel(bare_path, capsys):
    _, lines = doctor_screen(capsys)
    text = "\n".join(lines)
    assert "Course" in lines
    assert "Tests (./setup.sh test)" in lines
    assert f"Live lab (this kernel: Linux {os.uname().release})" in lines
    assert f"Python: {'.'.join(map(str, sys.version_info[:3]))}" in text


def test_find_chromium_honours_mmlab_chromium(bare_path, tmp_path, monkeypatch):
    assert doctor.find_chromium() is None
    write_executable(bare_path / "chromium-browser", "")
    assert doctor.find_chromium() == str(bare_path / "chromium-browser")
    browser = write_executable(tmp_path / "my-chrome", "")
    monkeypatch.setenv("MMLAB_CHROMIUM", str(browser))
    assert doctor.find_chromium() == str(browser)
    monkeypatch.setenv("MMLAB_CHROMIUM", str(tmp_path / "missing"))
    assert doctor.find_chromium() is None


# --- mmlab doctor: the judgement, on made-up machines ------------------------------------


HEALTHY = doctor.Facts(
    python=(3, 12, 1),
    executable="/p/.venv/bin/python",
    platform="linux",
    kernel="6.11.0",
    euid=0,
    mmlab_version="0.1.0",
    requirements=("jupyterlab<5,>=4", 'pytest>=8; extra == "test"', 'sphinx; extra == "docs"'),
    installed={"jupyterlab": "4.2.0", "pytest": "8.1.0"},
    renderer="/p/.venv/bin/graphviz-pure",
    thp="always [madvise] never\n",
    chromium="/usr/bin/chromium",
    course_dir=Path("/p/course"),
    course_found=True,
    qemu="/usr/bin/qemu-system-x86_64",
    vm_kernels={"6.1": "linux-image-6.1.0-57-amd64 (cached)", "6.12": "linux-image-6.12.118+deb12-amd64"},
)


def facts(**changes) -> doctor.Facts:
    return dataclasses.replace(HEALTHY, **changes)


def finding(findings, name) -> doctor.Finding:
    return next(f for f in findings if f.name == name)


def test_a_healthy_machine_has_nothing_to_do():
    findings = doctor.diagnose(facts())
    assert all(f.ok for f in findings), [f for f in findings if not f.ok]
    screen = doctor.render(findings, "6.11.0")
    assert "TODO" not in screen and "->" not in screen
    assert screen.splitlines()[-1].startswith("Everything is ready")


def test_requirements_are_checked_against_installed_versions():
    findings = doctor.diagnose(facts(installed={"jupyterlab": "3.6.0"}))
    lab = finding(findings, "jupyterlab")
    assert (lab.section, lab.ok, lab.blocking) == ("Course", False, True)
    assert "3.6.0" in lab.detail and ">=4" in lab.detail
    assert lab.advice == "/p/.venv/bin/python -m pip install 'jupyterlab<5,>=4'"
    pytest_ = finding(findings, "pytest")
    assert (pytest_.section, pytest_.ok, pytest_.blocking) == ("Tests", False, False)
    assert pytest_.detail == "not installed"
    assert not any(f.name == "sphinx" for f in findings)  # an extra the doctor does not cover


def test_distribution_names_are_matched_in_normal_form():
    findings = doctor.diagnose(facts(requirements=("Jupyter_LSP>=2",), installed={"jupyter-lsp": "2.2.0"}))
    assert finding(findings, "Jupyter_LSP").ok


def test_mmlab_not_installed_blocks_the_course():
    findings = doctor.diagnose(facts(mmlab_version=None, requirements=()))
    mmlab = finding(findings, "mmlab")
    assert not mmlab.ok and mmlab.blocking
    assert "./setup.sh course" in mmlab.advice
    screen = doctor.render(findings, "6.11.0")
    verdict = screen.splitlines()[-1]
    assert "cannot start" in verdict and "./setup.sh course" in verdict


def test_a_missing_course_folder_blocks_the_course():
    course = finding(doctor.diagnose(facts(course_found=False)), "course notebooks")
    assert not course.ok and course.blocking and "/p/course" in course.detail


def test_old_python_blocks_the_course():
    python = finding(doctor.diagnose(facts(python=(3, 9, 18))), "Python")
    assert not python.ok and python.blocking and "3.10" in python.advice


def test_missing_optional_things_leave_the_course_ready():
    findings = doctor.diagnose(facts(chromium=None, euid=1000))
    assert {f.name for f in findings if not f.ok} == {"chromium", "root"}
    assert not any(f.blocking for f in findings if not f.ok)
    screen = doctor.render(findings, "6.11.0")
    verdict = screen.splitlines()[-1]
    assert "course is ready" in verdict and "optional" in verdict
    assert "-> sudo apt-get install chromium" in screen  # not root, so through sudo


def test_other_kernels_need_qemu_and_the_kernel_packages_and_say_how_to_get_them():
    findings = doctor.diagnose(facts(qemu=None, euid=1000, vm_kernels={"6.1": "not found: apt knows no package"}))
    qemu, kernels = finding(findings, "qemu"), finding(findings, "kernel packages")
    assert (qemu.section, qemu.ok, qemu.blocking) == ("Other kernels", False, False)
    assert qemu.advice.startswith("sudo apt-get install qemu-system-x86")
    assert not kernels.ok and "6.1: not found" in kernels.detail and "apt-get update" in kernels.advice
    assert doctor.unmet(findings, doctor.VM_TESTS_NEED).startswith("qemu: qemu-system-x86_64 is not on PATH")
    assert "course is ready" in doctor.render(findings, "6.11.0").splitlines()[-1]


@pytest.mark.parametrize(
    ("platform", "euid", "command"),
    [("linux", 0, "apt-get install chromium"), ("linux", 1000, "sudo apt-get install chromium")],
)
def test_install_hint_fits_the_user(platform, euid, command):
    advice = finding(doctor.diagnose(facts(platform=platform, euid=euid, chromium=None)), "chromium").advice
    assert advice.startswith(command + " (or set MMLAB_CHROMIUM")


def test_without_the_renderer_the_course_still_runs_and_the_doctor_says_how_to_get_it():
    diagrams = finding(doctor.diagnose(facts(renderer=None)), "diagrams")
    assert not diagrams.ok and not diagrams.blocking and "DOT text" in diagrams.detail
    assert diagrams.advice.startswith("in the mmlab folder: /p/.venv/bin/python -m pip install -e .")


@pytest.mark.parametrize(
    ("text", "mode", "ok"),
    [
        ("always [madvise] never\n", "madvise", True),
        ("[always] madvise never\n", "always", True),
        ("always madvise [never]\n", "never", False),
    ],
)
def test_transparent_hugepage_modes(text, mode, ok):
    assert doctor.parse_thp_mode(text) == mode
    thp = finding(doctor.diagnose(facts(thp=text)), "transparent hugepages")
    assert thp.ok is ok and not thp.blocking
    assert thp.detail.startswith(mode)


@pytest.mark.parametrize(
    ("platform", "why"), [("linux", "this kernel has none"), ("darwin", "this is not Linux")]
)
def test_no_transparent_hugepages_at_all(platform, why):
    thp = finding(doctor.diagnose(facts(thp=None, platform=platform)), "transparent hugepages")
    assert not thp.ok and why in thp.detail


def test_unmet_names_what_is_missing_for_a_kind_of_test():
    findings = doctor.diagnose(facts(euid=1000))
    assert doctor.unmet(findings, doctor.BROWSER_TESTS_NEED) is None
    assert doctor.unmet(findings, doctor.LIVE_LAB_NEEDS) == "root: running as user id 1000"


@pytest.mark.parametrize(("changes", "status"), [({}, 0), ({"renderer": None}, 0), ({"mmlab_version": None}, 1)])
def test_doctor_exit_status_follows_the_course_prerequisites(changes, status, monkeypatch, capsys):
    monkeypatch.setattr(doctor, "gather", lambda: facts(**changes))
    assert cli.main(["doctor"]) == status
    assert capsys.readouterr().out.startswith("mmlab doctor:")


# --- setup.sh ----------------------------------------------------------------------------


@pytest.mark.parametrize("argv", [[], ["frobnicate"], ["--help-me"]])
def test_setup_sh_rejects_an_unknown_command_with_usage(argv):
    result = subprocess.run(["bash", str(PROJECT / "setup.sh"), *argv], capture_output=True, text=True)
    assert result.returncode == 2
    assert "usage: ./setup.sh course" in result.stderr
    assert "./setup.sh test" in result.stderr


@pytest.mark.parametrize("script", ["setup.sh", ".ci/run"])
def test_shell_scripts_parse(script):
    subprocess.run(["bash", "-n", str(PROJECT / script)], check=True)


# --- the project's pytest plugin (mmlab.app.pytest_plugin) ---------------------------------------

pytest_plugins = ["pytester"]

MARKED_TESTS = """
import os
import pytest

@pytest.mark.browser
def test_in_a_browser():
    pass

@pytest.mark.live
def test_on_this_kernel():
    pass

def test_jupyter_home():
    assert os.environ["JUPYTER_CONFIG_DIR"].startswith(os.environ["EXPECTED_HOME"])
"""


@pytest.fixture
def plugin_run(pytester, monkeypatch):
    """Run MARKED_TESTS under the plugin, on a machine without Chromium, as an ordinary user."""
    from mmlab.app import pytest_plugin

    machine = facts(chromium=None, euid=1000)
    monkeypatch.setattr(pytest_plugin, "machine_findings", lambda: tuple(doctor.diagnose(machine)))
    for name in ("JUPYTER_CONFIG_DIR", "JUPYTER_DATA_DIR", "IPYTHONDIR", "CI"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("EXPECTED_HOME", str(pytester.path / ".jupyter"))
    pytester.makepyfile(test_marked=MARKED_TESTS)
    pytester.makeini("[pytest]\nmarkers =\n  browser: b\n  live: l\n")
    return lambda: pytester.runpytest_inprocess("-p", "mmlab.app.pytest_plugin", "-rs")


def test_plugin_skips_tests_whose_prerequisites_are_missing(plugin_run):
    result = plugin_run()
    result.assert_outcomes(passed=1, skipped=2)
    result.stdout.fnmatch_lines(
        [
            "*browser test on a machine without it: chromium: not found*",
            "*live test*root: running as user id 1000*",
        ]
    )


def test_plugin_under_ci_fails_browser_tests_it_cannot_run(plugin_run, monkeypatch):
    monkeypatch.setenv("CI", "true")
    result = plugin_run()
    result.assert_outcomes(passed=1, skipped=1, errors=1)
    result.stdout.fnmatch_lines(["*CI must run this browser test, but chromium: not found*"])
