"""Learners' own copies of the course notebooks, in ``my-work/``.

The notebooks in ``course/`` and ``exercises/`` are tracked by git: a learner who ran and
saved them (JupyterLab saves by itself) would make the next ``git pull`` of a course
update conflict. So a learner works in copies: ``my-work/course/`` and
``my-work/exercises/``, a folder git ignores. ``sync_copies`` makes them, and on every
start of ``mmlab lab`` brings them up to date the way nbgitpuller treats a learner's files:

- a notebook the learner does not have yet (new, or deleted to start over) is copied;
- a copy the learner has not changed since it was made follows the original's updates;
- a copy the learner changed is never touched: their work wins. The new version stays in
  ``course/`` or ``exercises/``, and the learner is told once.

``my-work/.copies.json`` remembers, for each copy, the digests of the original it was made
from and of the copy as made. Run ``python -m mmlab.app.workspace [PROJECT]`` to make the
copies without starting JupyterLab (a hub's start-up hook, Binder's postBuild).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

WORK_DIR = "my-work"
SOURCES = ("course", "exercises")  # the folders whose notebooks are copied, under the same names
STATE_FILE = ".copies.json"
LANDING_PAGE = "START-HERE.md"  # in the project root: links to the copies (Markdown: nothing to save)


@dataclass
class Sync:
    """What ``sync_copies`` did, as paths relative to ``my-work/``."""

    copied: list[str] = field(default_factory=list)  # made, there was none
    updated: list[str] = field(default_factory=list)  # unchanged by the learner: the new version
    kept: list[str] = field(default_factory=list)  # changed by the learner: theirs kept, the update not taken

    def report(self) -> list[str]:
        """One line per kind of change, for the terminal; none when nothing happened."""
        lines = []
        if self.copied:
            lines.append(f"copied to {WORK_DIR}/ for you: {', '.join(self.copied)}")
        if self.updated:
            lines.append(f"updated in {WORK_DIR}/ (you had not changed them): {', '.join(self.updated)}")
        for name in self.kept:
            lines.append(f"{name} has a new version; your {WORK_DIR}/{name} has your work, so it was kept. "
                         f"For the new one, rename yours and start mmlab lab again.")
        return lines


def missing_folders(project: Path) -> list[str]:
    """The folders of an mmlab project that ``project`` lacks ("course/", "exercises/")."""
    return [f"{folder}/" for folder in SOURCES if not (project / folder).is_dir()]


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def originals(project: Path) -> list[tuple[str, Path]]:
    """Every notebook to copy: (path relative to my-work/, the original)."""
    return [(f"{folder}/{notebook.name}", notebook)
            for folder in SOURCES for notebook in sorted((project / folder).glob("*.ipynb"))]


def sync_copies(project: Path) -> Sync:
    """Make or update the learner's copies of ``project``'s notebooks in ``project/my-work``."""
    work = project / WORK_DIR
    state_path = work / STATE_FILE
    state = json.loads(state_path.read_text()) if state_path.exists() else {}
    done = Sync()
    for name, original in originals(project):
        copy = work / name
        now = digest(original)
        made = state.get(name)
        if copy.exists() and made and made["original"] == now:
            continue  # up to date
        if not copy.exists() or (made and digest(copy) == made["copy"]):
            (done.updated if copy.exists() else done.copied).append(name)
            copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(original, copy)
            state[name] = {"original": now, "copy": now}
        else:
            done.kept.append(name)
            state[name] = {"original": now, "copy": made["copy"] if made else None}
    if done.copied or done.updated or done.kept:
        state_path.write_text(json.dumps(state, indent=1, sort_keys=True) + "\n")
    return done


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    project = Path(args[0] if args else ".").resolve()
    missing = missing_folders(project)
    if missing:
        print(f"{project} is not an mmlab project: it has no {' or '.join(missing)} folder", file=sys.stderr)
        return 2
    for line in sync_copies(project).report() or [f"{project / WORK_DIR} is up to date"]:
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
