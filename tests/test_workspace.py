"""The learner's own copies in my-work/ (mmlab.app.workspace): made once, following the
course's updates while the learner has not touched them, and never overwriting their work;
and the landing page that links them."""

import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat

from mmlab.app import jupyter, workspace

PROJECT = Path(__file__).resolve().parent.parent


def notebook(text: str) -> str:
    return nbformat.writes(nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(text)]))


def project(root: Path, **notebooks: str) -> Path:
    """A project whose course/ and exercises/ hold ``notebooks`` ({"course/01.ipynb": text})."""
    for folder in workspace.SOURCES:
        (root / folder).mkdir(parents=True, exist_ok=True)
    for name, text in notebooks.items():
        (root / name).write_text(notebook(text))
    return root


def test_the_first_start_copies_every_lecture_and_exercise(tmp_path):
    root = project(tmp_path, **{"course/01.ipynb": "lecture 1", "exercises/01.ipynb": "exercise 1"})
    done = workspace.sync_copies(root)
    assert done.copied == ["course/01.ipynb", "exercises/01.ipynb"] and not done.updated and not done.kept
    assert (root / "my-work/course/01.ipynb").read_text() == (root / "course/01.ipynb").read_text()
    again = workspace.sync_copies(root)
    assert again.report() == []  # nothing to do, nothing said


def test_an_untouched_copy_follows_the_courses_update(tmp_path):
    root = project(tmp_path, **{"course/01.ipynb": "lecture 1"})
    workspace.sync_copies(root)
    (root / "course/01.ipynb").write_text(notebook("lecture 1, corrected"))  # what git pull does
    done = workspace.sync_copies(root)
    assert done.updated == ["course/01.ipynb"]
    assert "corrected" in (root / "my-work/course/01.ipynb").read_text()


def test_a_learners_work_is_never_overwritten_and_they_are_told_once(tmp_path):
    root = project(tmp_path, **{"exercises/01.ipynb": "exercise 1"})
    workspace.sync_copies(root)
    mine = root / "my-work/exercises/01.ipynb"
    mine.write_text(notebook("exercise 1, with my answer"))  # what running and saving does
    (root / "exercises/01.ipynb").write_text(notebook("exercise 1, new version"))
    done = workspace.sync_copies(root)
    assert done.kept == ["exercises/01.ipynb"] and not done.updated
    assert "my answer" in mine.read_text()
    assert "has your work, so it was kept" in done.report()[0] and "rename yours" in done.report()[0]
    assert workspace.sync_copies(root).report() == []  # told once
    mine.rename(mine.with_name("01-mine.ipynb"))  # as the message says: rename it, start again
    assert workspace.sync_copies(root).copied == ["exercises/01.ipynb"]
    assert "new version" in mine.read_text()


def test_a_copy_found_without_a_record_is_the_learners(tmp_path):
    root = project(tmp_path, **{"course/01.ipynb": "lecture 1"})
    (root / "my-work/course").mkdir(parents=True)
    (root / "my-work/course/01.ipynb").write_text(notebook("made by hand"))
    assert workspace.sync_copies(root).kept == ["course/01.ipynb"]
    assert "made by hand" in (root / "my-work/course/01.ipynb").read_text()


def test_git_ignores_the_copies():
    ignored = subprocess.run(["git", "check-ignore", "-q", "my-work/course/01-folios-and-thp.ipynb"], cwd=PROJECT)
    assert ignored.returncode == 0


def test_the_command_makes_the_copies_for_a_hub_or_binder(tmp_path):
    root = project(tmp_path, **{"course/01.ipynb": "lecture 1"})
    ran = subprocess.run([sys.executable, "-m", "mmlab.app.workspace", str(root)], capture_output=True, text=True)
    assert ran.returncode == 0 and "copied to my-work/ for you: course/01.ipynb" in ran.stdout
    ran = subprocess.run([sys.executable, "-m", "mmlab.app.workspace", str(tmp_path / "course")],
                         capture_output=True, text=True)
    assert ran.returncode == 2 and "no course/ or exercises/ folder" in ran.stderr


def test_the_landing_page_links_every_lecture_and_exercise_in_my_work():
    text = (PROJECT / workspace.LANDING_PAGE).read_text()
    links = set(re.findall(r"\]\((my-work/[^)]+\.ipynb)\)", text))
    assert links == {f"{workspace.WORK_DIR}/{name}" for name, _ in workspace.originals(PROJECT)}


def test_binder_prepares_the_copies_and_the_landing_page_as_mmlab_lab_does(tmp_path):
    root = project(tmp_path / "repo", **{"course/01.ipynb": "lecture 1"})
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(tmp_path / "config"), "PATH": os.path.dirname(sys.executable)
           + os.pathsep + os.environ["PATH"]}
    ran = subprocess.run(["bash", str(PROJECT / "binder/postBuild")], cwd=root, env=env, capture_output=True,
                         text=True)
    assert ran.returncode == 0, ran.stderr
    assert (root / "my-work/course/01.ipynb").is_file()
    settings = tmp_path / "config" / jupyter.DOCMANAGER_SETTINGS
    assert "Markdown Preview" in settings.read_text()
