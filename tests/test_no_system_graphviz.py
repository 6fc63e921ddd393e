"""The course draws its diagrams with nothing but what ``pip install`` brought: a lecture
passes nbval, its stored diagrams compared byte for byte, with no Graphviz ``dot`` on PATH."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
LECTURE = "course/01-folios-and-thp.ipynb"  # four diagrams and the explorer widget


def test_a_lecture_passes_nbval_with_no_dot_on_path(tmp_path):
    path = str(Path(sys.executable).parent)  # this Python's scripts (pytest, graphviz-pure), nothing else
    assert shutil.which("dot", path=path) is None, f"{path} holds a dot: this test needs a PATH without it"
    env = {**os.environ, "PATH": path}
    ran = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", LECTURE],
        cwd=PROJECT, env=env, capture_output=True, text=True, timeout=600,
    )
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-2000:]
    assert " passed" in ran.stdout and "skipped" not in ran.stdout.splitlines()[-1]
