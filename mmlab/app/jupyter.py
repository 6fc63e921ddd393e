"""``mmlab lab``: open the course in JupyterLab.

JupyterLab serves the project folder and opens its landing page, START-HERE.md, which
links the lectures and exercises; Markdown files open rendered (a preview: nothing there
for JupyterLab to save into a tracked file), unless the learner chose otherwise. Before it
starts, the learner's own copies of those notebooks are made or brought up to date in
``my-work/`` (mmlab.app.workspace): the learner works there, so a ``git pull`` of a course
update never meets their work.

The command line and the environment are built by pure functions (``lab_command``,
``with_jupyter_home``) so that tests can check them without starting a server; ``run``
only adds the facts of this process and hands over to JupyterLab.

Jupyter and IPython normally keep settings, kernel connection files and history under the
user's home directory. mmlab points them at the project's ``.jupyter/`` instead, so that
using the course writes nothing outside the project and its virtual environment.
Variables the user has already set win.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from . import workspace

PROJECT_DIR = Path(__file__).resolve().parents[2]
COURSE_DIR = PROJECT_DIR / "course"

JUPYTERLAB_MISSING = """\
mmlab lab: JupyterLab is not installed for this Python ({python}).
To set everything up, run this in the mmlab folder:
    ./setup.sh course
or install JupyterLab into this Python:
    {python} -m pip install 'jupyterlab>=4,<5'"""

PROJECT_MISSING = """\
mmlab lab: {project} is not an mmlab project (it has no {missing} folder).
mmlab finds the project beside its own source, so install it from a clone of the project
(pip install -e .), or say where the project is: mmlab lab --dir PATH"""


def jupyter_home(project_dir: Path) -> Path:
    """The folder that holds Jupyter's and IPython's per-user files for a project."""
    return project_dir / ".jupyter"


def with_jupyter_home(env: Mapping[str, str], home: Path) -> dict[str, str]:
    """A copy of ``env`` in which Jupyter's config and data dirs, IPython's dir and npm's
    cache lie under ``home``.

    Jupyter's runtime dir (kernel connection files) and JupyterLab's settings and
    workspaces follow the data and config dirs; npm's cache is where npm logs the
    ``npm prefix`` JupyterLab runs at start. Variables already present in ``env`` are
    kept, so a user who chose their own directories keeps them.
    """
    defaults = {
        "JUPYTER_CONFIG_DIR": str(home / "config"),
        "JUPYTER_DATA_DIR": str(home / "data"),
        "IPYTHONDIR": str(home / "ipython"),
        "npm_config_cache": str(home / "npm"),
    }
    return {**defaults, **env}


# JupyterLab's setting that opens Markdown files rendered, and the file that holds it
# (relative to JUPYTER_CONFIG_DIR).
MARKDOWN_PREVIEW = {"defaultViewers": {"markdown": "Markdown Preview"}}
DOCMANAGER_SETTINGS = Path("lab/user-settings/@jupyterlab/docmanager-extension/plugin.jupyterlab-settings")


def open_markdown_rendered(config_dir: Path) -> bool:
    """Have JupyterLab open Markdown files rendered, unless its document settings in
    ``config_dir`` exist already (the learner's choices win). True when written."""
    path = config_dir / DOCMANAGER_SETTINGS
    if path.exists():
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(MARKDOWN_PREVIEW, indent=1) + "\n")
    return True


def lab_command(
    root: Path,
    *,
    python: str,
    euid: int,
    landing: str | None = None,
    port: int | None = None,
    open_browser: bool = True,
    extra: Sequence[str] = (),
) -> list[str]:
    """The command line that starts JupyterLab with ``python``, serving ``root`` and opening
    the notebook ``landing`` (a path under ``root``) first, if given.

    JupyterLab refuses to run as root unless told ``--allow-root``, so it is added when
    ``euid`` is 0. ``extra`` goes last, so it can override anything before it.
    """
    command = [python, "-m", "jupyterlab", f"--ServerApp.root_dir={root}"]
    if landing:
        command.append(f"--LabApp.default_url=/lab/tree/{landing}")
    if euid == 0:
        command.append("--allow-root")
    if not open_browser:
        command.append("--no-browser")
    if port is not None:
        command.append(f"--port={port}")
    command.extend(extra)
    return command


def _port(text: str) -> int:
    """An argparse type: a TCP port number."""
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"not a port number (1-65535): {text!r}")
    return int(text)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dir", type=Path, default=PROJECT_DIR,
        help="the mmlab project to open, the folder holding course/ and exercises/ (default: %(default)s)",
    )
    parser.add_argument(
        "--port", type=_port, help="the port JupyterLab listens on (default: 8888 or the next free one)"
    )
    parser.add_argument(
        "--no-browser", dest="open_browser", action="store_false", help="do not open a web browser"
    )
    parser.add_argument(
        "jupyter_args", nargs="*", metavar="-- JUPYTER_ARGS", help="more arguments for jupyter lab, after --"
    )


def run(args: argparse.Namespace) -> int:
    if importlib.util.find_spec("jupyterlab") is None:
        print(JUPYTERLAB_MISSING.format(python=sys.executable), file=sys.stderr)
        return 1
    project = args.dir.resolve()
    missing = workspace.missing_folders(project)
    if missing:
        print(PROJECT_MISSING.format(project=project, missing=" or ".join(missing)), file=sys.stderr)
        return 1
    for line in workspace.sync_copies(project).report():
        print(f"mmlab lab: {line}", file=sys.stderr)
    landing = workspace.LANDING_PAGE if (project / workspace.LANDING_PAGE).is_file() else None
    command = lab_command(
        project,
        python=sys.executable,
        euid=os.geteuid(),
        landing=landing,
        port=args.port,
        open_browser=args.open_browser,
        extra=args.jupyter_args,
    )
    home = jupyter_home(project)
    env = with_jupyter_home(os.environ, home)
    if Path(env["JUPYTER_CONFIG_DIR"]).is_relative_to(home):  # never into a config dir the user chose
        open_markdown_rendered(Path(env["JUPYTER_CONFIG_DIR"]))
    print(f"mmlab lab: starting JupyterLab on {project}; your notebooks are in {project / workspace.WORK_DIR} "
          "(stop it with Ctrl-C)", file=sys.stderr)
    sys.stderr.flush()
    os.execve(command[0], command, env)
    return 1  # not reached: execve replaces this process or raises
