"""No file of the project points outside it: no reference to the authors' working notes,
and every relative link in the prose (Markdown files, notebook Markdown cells) leads to a
file inside the project. Sources learners need are in course/sources.ipynb."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from urllib.parse import unquote

import pytest

from mmlab.app.workspace import WORK_DIR

REPO = Path(__file__).resolve().parent.parent
SKIP_DIRS = {".git", ".venv", "build", "dist", "_site", "grading-out", "__pycache__", ".pytest_cache", ".ruff_cache",
             ".hypothesis", ".ipynb_checkpoints", ".jupyter"}

# The authors' shared working area (notes, seed thread, design sketch) is not shipped.
OUTSIDE = re.compile(r"(?:\.\./)+shared/|/work/shared|\bshared/(?:notes|seed|design)")
LINK = re.compile(r"\]\(([^()\s]+(?:\([^()\s]*\))?[^()\s]*)\)")


def project_files() -> list[Path]:
    """The tracked files (git ls-files), or every file outside build/tool folders if this is no git checkout."""
    try:
        listed = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout
        files = [REPO / name for name in listed.decode().split("\0") if name]
    except (OSError, subprocess.CalledProcessError):
        files = [p for p in REPO.rglob("*") if p.is_file() and not SKIP_DIRS & set(p.relative_to(REPO).parts)]
    return [p for p in files if p.is_file()]


def text_of(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except (UnicodeDecodeError, OSError):
        return None


def markdown_of(path: Path, text: str) -> list[str]:
    """The Markdown prose of a file: the file itself, or a notebook's Markdown cells."""
    if path.suffix == ".md":
        return [text]
    if path.suffix == ".ipynb":
        cells = json.loads(text)["cells"]
        return ["".join(c["source"]) for c in cells if c["cell_type"] == "markdown"]
    return []


FILES = project_files()


def test_the_project_lists_its_files():
    assert any(p.name == "sources.ipynb" for p in FILES), "course/sources.ipynb is missing"
    assert len(FILES) > 50


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(REPO)))
def test_no_file_points_outside_the_project(path):
    text = text_of(path)
    if text is None or path == Path(__file__).resolve():
        return  # binary, or this test, which has to spell out what it looks for
    found = [text[max(0, m.start() - 40):m.end() + 40] for m in OUTSIDE.finditer(text)]
    assert not found, f"{path.relative_to(REPO)} refers to files outside the project: {found}"
    for prose in markdown_of(path, text):
        for target in LINK.findall(prose):
            if re.match(r"[a-z]+:", target) or target.startswith("#"):
                continue  # a web address, mail, or a section of the same page
            linked = (path.parent / unquote(target.split("#")[0])).resolve()
            assert linked.is_relative_to(REPO), f"{path.relative_to(REPO)} links outside the project: {target}"
            if linked.is_relative_to(REPO / WORK_DIR):  # the learner's copies, made by `mmlab lab`
                linked = REPO / linked.relative_to(REPO / WORK_DIR)
            assert linked.exists(), f"{path.relative_to(REPO)} links to {target}, which does not exist"


def test_the_check_finds_what_it_looks_for():
    assert OUTSIDE.search("see ../shared/notes/kernel.md §5") and OUTSIDE.search("(shared/notes/kernel.md §6)")
    assert not OUTSIDE.search("a THP shared by two processes; shared/ memory")
    assert LINK.findall("[Sources §7](sources.ipynb#7.-Host-experiments) and [x](../../etc/passwd)") == [
        "sources.ipynb#7.-Host-experiments", "../../etc/passwd"]


def test_the_sources_page_lists_every_commit_the_course_cites():
    """Every commit hash a lecture, a solution or a kernel profile cites is on course/sources.ipynb,
    where learners find its title, release and backports."""
    sources = (REPO / "course" / "sources.ipynb").read_text(encoding="utf-8")
    citing = [*sorted((REPO / "course").glob("*.ipynb")), *sorted((REPO / "solutions").glob("*.ipynb")),
              REPO / "mmlab" / "kernels.py"]
    cited = {}
    for path in citing:
        if path.name == "sources.ipynb":
            continue
        text = path.read_text(encoding="utf-8")
        if path.suffix == ".ipynb":  # the cells' sources, not their outputs
            text = "\n".join("".join(cell["source"]) for cell in json.loads(text)["cells"])
        for found in re.findall(r"(?<![0-9a-f])[0-9a-f]{12}(?:[0-9a-f]{28})?(?![0-9a-f])", text):
            if re.search("[a-f]", found) and re.search("[0-9]", found):
                cited.setdefault(found[:12], path.name)
    assert len(cited) >= 10, "the course cites fewer commits than expected: is the pattern right?"
    missing = {commit: where for commit, where in cited.items() if commit not in sources}
    assert not missing, f"commits cited but not on the sources page: {missing}"
