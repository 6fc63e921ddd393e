"""``mmlab lab``: open the course in JupyterLab.

The command line and the environment are built by pure functions (``lab_command``,
``with_jupyter_home``) so that tests can check them without starting a server; ``run``
only adds the facts of this process and hands over to JupyterLab.

Jupyter and IPython normally keep settings, kernel connection files and history under the
user's home directory. mmlab points them at ``.jupyter/`` beside the course folder instead,
so that using the course writes nothing outside the project and its virtual environment.
Variables the user has already set win.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parents[2]
COURSE_DIR = PROJECT_DIR / "course"

JUPYTERLAB_MISSING = """\
mmlab lab: JupyterLab is not installed for this Python ({python}).
To set everything up, run this in the mmlab folder:
    ./setup.sh course
or install JupyterLab into this Python:
    {python} -m pip install 'jupyterlab>=4,<5'"""

COURSE_MISSING = """\
mmlab lab: there is no course folder at {course}.
mmlab finds the course beside its own source, so install it from a clone of the project
(pip install -e .), or say where the course is: mmlab lab --dir PATH"""


def jupyter_home(project_dir: Path) -> Path:
    """The folder that holds Jupyter's and IPython's per-user files for a project."""
    return project_dir / ".jupyter"


def with_jupyter_home(env: Mapping[str, str], home: Path) -> dict[str, str]:
    """A copy of ``env`` in which Jupyter's config and data dirs and IPython's dir lie under ``home``.

    Jupyter's runtime dir (kernel connection files) and JupyterLab's settings and
    workspaces follow the data and config dirs. Variables already present in ``env`` are
    kept, so a user who chose their own directories keeps them.
    """
    defaults = {
        "JUPYTER_CONFIG_DIR": str(home / "config"),
        "JUPYTER_DATA_DIR": str(home / "data"),
        "IPYTHONDIR": str(home / "ipython"),
    }
    return {**defaults, **env}


def lab_command(
    course_dir: Path,
    *,
    python: str,
    euid: int,
    port: int | None = None,
    open_browser: bool = True,
    extra: Sequence[str] = (),
) -> list[str]:
    """The command line that starts JupyterLab with ``python``, serving ``course_dir``.

    JupyterLab refuses to run as root unless told ``--allow-root``, so it is added when
    ``euid`` is 0. ``extra`` goes last, so it can override anything before it.
    """
    command = [python, "-m", "jupyterlab", f"--ServerApp.root_dir={course_dir}"]
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
        "--dir", type=Path, default=COURSE_DIR, help="the course folder to open (default: %(default)s)"
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
    course_dir = args.dir.resolve()
    if not course_dir.is_dir():
        print(COURSE_MISSING.format(course=course_dir), file=sys.stderr)
        return 1
    command = lab_command(
        course_dir,
        python=sys.executable,
        euid=os.geteuid(),
        port=args.port,
        open_browser=args.open_browser,
        extra=args.jupyter_args,
    )
    env = with_jupyter_home(os.environ, jupyter_home(course_dir.parent))
    print(f"mmlab lab: starting JupyterLab on {course_dir} (stop it with Ctrl-C)", file=sys.stderr)
    sys.stderr.flush()
    os.execve(command[0], command, env)
    return 1  # not reached: execve replaces this process or raises
