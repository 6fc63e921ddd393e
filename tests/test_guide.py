"""INSTRUCTORS.md keeps its promises: its shell blocks marked ``# tested`` run as written, in
order, on a copy of the project (a fresh clone with the project's environment), and do what
the guide says they do; every section, exercise and widget it points learners at exists.

A shell block starts with one of::

    # tested                     run it; it must exit with status 0
    # tested, exit status N      run it; it must exit with status N
    # not tested: REASON         skipped, with that reason (network, root, a server)
"""

import csv
import json
import os
import re
import shutil
import subprocess
import zipfile
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest

from mmlab.grading import notebooks

PROJECT = Path(__file__).resolve().parent.parent
GUIDE = PROJECT / "INSTRUCTORS.md"
MARK = re.compile(r"# (?:tested(?:, exit status (?P<status>\d+))?|not tested: (?P<reason>.+))")
SOLVED, UNTOUCHED = "ada.lovelace", "alan.turing"  # two hub users: one did the work, one opened one exercise


@dataclass(frozen=True)
class Block:
    line: int  # where the block starts in the guide
    source: str
    status: int | None  # the exit status it must have; None when it is not run
    reason: str = ""

    @property
    def name(self) -> str:
        first = next(line for line in self.source.splitlines()[1:] if line.strip())
        return f"line {self.line}: {first.strip()[:40]}"


def shell_blocks(text: str) -> list[Block]:
    """Every ```sh block of ``text``, with what its first line says about testing it."""
    blocks = []
    for match in re.finditer(r"^```sh\n(.*?)^```$", text, re.MULTILINE | re.DOTALL):
        source, line = match.group(1), text.count("\n", 0, match.start()) + 1
        mark = MARK.fullmatch(source.splitlines()[0])
        if mark is None:
            raise AssertionError(
                f"INSTRUCTORS.md line {line}: a sh block must start with '# tested' or "
                f"'# not tested: REASON', not {source.splitlines()[0]!r}"
            )
        status = None if mark["reason"] else int(mark["status"] or 0)
        blocks.append(Block(line, source, status, mark["reason"] or ""))
    return blocks


BLOCKS = shell_blocks(GUIDE.read_text())


def test_the_guide_has_tested_blocks_for_every_tool_it_documents():
    tested = "\n".join(b.source for b in BLOCKS if b.status is not None)
    for command in ("mmlab build --check", "mmlab check", "mmlab grade", "mmlab export", "mmlab doctor"):
        assert command in tested


# --- a fresh copy of the project, with two learners' work on a simulated hub ------------


def solved(exercise: Path, solution: Path) -> nbformat.NotebookNode:
    """The released exercise with every answer cell filled in from its solution, as a learner would."""
    nb = nbformat.read(exercise, as_version=4)
    answers = {
        cell.grade_id: nbformat.read(solution, as_version=4).cells[cell.index].source
        for cell in notebooks.graded_cells(nbformat.read(solution, as_version=4), solution.name)
        if cell.role == notebooks.SOLUTION
    }
    for cell in nb.cells:
        grade_id = cell.metadata.get("mmlab", {}).get("grade_id")
        if grade_id in answers:
            cell.source = answers[grade_id]
    return nb


def fresh_copy(root: Path) -> Path:
    """The tracked files of the project, as a clone has them, with its environment linked in."""
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=PROJECT, capture_output=True, text=True, check=True
    ).stdout.split("\0")
    copy = root / "mmlab"
    for name in filter(None, listed):
        source = PROJECT / name
        if source.is_file():
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, copy / name)
    (copy / ".venv").symlink_to(PROJECT / ".venv")
    return copy


def hub_homes(root: Path, project: Path) -> Path:
    """/home of a hub where one learner solved every exercise and another saved one as released."""
    homes = root / "home"
    for learner in (SOLVED, UNTOUCHED):
        (homes / learner / "exercises").mkdir(parents=True)
    exercises = sorted((project / "exercises").glob("*.ipynb"))
    for exercise in exercises:
        nbformat.write(
            solved(exercise, project / "solutions" / exercise.name), homes / SOLVED / "exercises" / exercise.name
        )
    shutil.copy2(exercises[0], homes / UNTOUCHED / "exercises" / exercises[0].name)
    (homes / "lost+found").mkdir()  # not a learner: it has no exercises
    return homes


@dataclass
class Ran:
    block: Block
    status: int
    output: str


@pytest.fixture(scope="module")
def guide_run(tmp_path_factory):
    """Every tested block, run in order in one copy of the project; the copy and the results."""
    root = tmp_path_factory.mktemp("fresh")
    project = fresh_copy(root)
    if not sorted((project / "exercises").glob("*.ipynb")):
        pytest.fail("exercises/ has no notebooks: the guide's grading commands need at least one")
    env = {key: value for key, value in os.environ.items() if not key.startswith(("MMLAB_", "VIRTUAL_ENV"))}
    env.update(
        HOME=str(root / "instructor"),
        HOMES=str(hub_homes(root, project)),
        PATH=os.pathsep.join(p for p in env["PATH"].split(os.pathsep) if not p.startswith(str(PROJECT))),
    )
    (root / "instructor").mkdir()
    results = {}
    for block in BLOCKS:
        if block.status is None:
            continue
        script = block.source if block is BLOCKS[0] else f". .venv/bin/activate\n{block.source}"
        done = subprocess.run(
            ["bash", "-e", "-c", script],
            cwd=project,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=600,
        )
        results[block.line] = Ran(block, done.returncode, done.stdout + done.stderr)
    return project, results


@pytest.mark.parametrize("block", BLOCKS, ids=[b.name for b in BLOCKS])
def test_a_shell_block_runs_as_written(block, guide_run):
    if block.status is None:
        pytest.skip(f"INSTRUCTORS.md line {block.line} is not tested: {block.reason}")
    ran = guide_run[1][block.line]
    assert ran.status == block.status, f"INSTRUCTORS.md line {block.line} exited {ran.status}:\n{ran.output[-3000:]}"


def test_the_activation_block_is_what_puts_mmlab_on_path(guide_run):
    assert "usage: mmlab" in guide_run[1][BLOCKS[0].line].output


def output_of(guide_run, command: str) -> str:
    return next(r.output for r in guide_run[1].values() if command in r.block.source)


def test_before_the_session_every_solution_passes_and_no_exercise_does(guide_run):
    out = output_of(guide_run, "mmlab build --check")
    passed = re.findall(r"Public checks passed: (\d+) of (\d+)", out)
    assert len(passed) == 2, out
    (solutions_passed, solutions_total), (exercises_passed, exercises_total) = passed
    assert solutions_passed == solutions_total == exercises_total != "0" and exercises_passed == "0"
    assert (guide_run[0] / "build" / "site" / "index.html").is_file()


def test_collected_work_is_graded_and_totalled_per_learner(guide_run):
    project, _ = guide_run
    assert sorted(p.name for p in (project / "submissions").iterdir()) == [SOLVED, UNTOUCHED]
    with open(project / "grades" / "totals.csv", newline="") as f:
        totals = {row["learner"]: row for row in csv.DictReader(f)}
    exercises = sorted(p.name for p in (project / "exercises").glob("*.ipynb"))
    assert sorted(totals) == [SOLVED, UNTOUCHED]
    assert list(totals[SOLVED])[1:-2] == exercises
    assert float(totals[SOLVED]["total"]) == float(totals[SOLVED]["out_of"]) > 0  # hidden checks included
    assert float(totals[UNTOUCHED]["total"]) == 0 and totals[UNTOUCHED]["out_of"] == totals[SOLVED]["out_of"]
    for learner in (SOLVED, UNTOUCHED):
        for exercise in exercises:
            assert (project / "grades" / "learners" / learner / f"{Path(exercise).stem}.html").is_file()
    with open(project / "grades" / "grades.csv", newline="") as f:
        statuses = {(row["learner"], row["notebook"], row["status"]) for row in csv.DictReader(f)}
    missing = {notebook for learner, notebook, status in statuses if status == "missing"}
    assert missing == set(exercises[1:])  # as the guide says: graded as missing, with zero points
    assert {learner for learner, _, status in statuses if status == "missing"} == {UNTOUCHED}


def unzip(archive: Path, into: Path) -> Path:
    """Extract ``archive`` keeping each file's permission bits, as unzip(1) does."""
    with zipfile.ZipFile(archive) as zipped:
        for member in zipped.infolist():
            zipped.extract(member, into)
            if member.external_attr >> 16:
                (into / member.filename).chmod(member.external_attr >> 16 & 0o777)
    return into


def test_the_gradescope_autograder_grades_one_submission(guide_run, tmp_path):
    project, _ = guide_run
    ag = unzip(project.parent / "autograder.zip", tmp_path / "autograder")
    assert not any(p.name.startswith(("autograder", "gradescope")) for p in project.iterdir())  # no solution left
    notebook = next((ag / "source" / "solutions").glob("*.ipynb")).name
    (ag / "submission").mkdir()
    email = "ada@example.org"
    nbformat.write(
        solved(project / "exercises" / notebook, project / "solutions" / notebook), ag / "submission" / notebook
    )
    (ag / "submission_metadata.json").write_text(json.dumps({"users": [{"email": email, "id": 1, "name": "Ada"}]}))
    env = {
        **os.environ,
        "AUTOGRADER_ROOT": str(ag),
        "PATH": f"{PROJECT / '.venv' / 'bin'}{os.pathsep}{os.environ['PATH']}",
    }
    done = subprocess.run([ag / "run_autograder"], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    results = json.loads((ag / "results" / "results.json").read_text())
    assert results["tests"] and results["score"] == sum(t["max_score"] for t in results["tests"]) > 0
    assert {t["visibility"] for t in results["tests"]} <= {"visible", "after_due_date"}
    assert all(t["name"].startswith(f"{notebook}: ") for t in results["tests"])


# --- what the guide points at exists -------------------------------------------------------


def course_sections() -> dict[str, str]:
    """Section number ("5.4") -> the text of that section's cells, over every lecture."""
    sections, current = {}, None
    for path in sorted((PROJECT / "course").glob("*.ipynb")):
        for cell in nbformat.read(path, as_version=4).cells:
            for line in cell.source.splitlines():
                heading = re.match(r"## (\d+\.\d+) ", line) if cell.cell_type == "markdown" else None
                if heading or (cell.cell_type == "markdown" and line.startswith("## ")):
                    current = heading.group(1) if heading else None
                if current:
                    sections[current] = sections.get(current, "") + line + "\n"
    return sections


def test_every_section_the_guide_names_exists():
    named = {
        n for span in re.findall(r"§(\d+\.\d+(?:[–-]\d+\.\d+)?)", GUIDE.read_text()) for n in re.split("[–-]", span)
    }
    assert named, "the guide names no section"
    assert named <= set(course_sections()), sorted(named - set(course_sections()))


def test_every_widget_the_guide_names_is_in_that_section():
    text, sections = GUIDE.read_text(), course_sections()
    claims = re.findall(r"the (explorer|replay widget) in §(\d+\.\d+)", text)
    assert len(claims) >= 4
    for widget, section in claims:
        call = {"explorer": "explorer_widget(", "replay widget": "replay_widget("}[widget]
        assert call in sections[section], f"the guide says §{section} has the {widget}"


def test_every_notebook_and_exercise_the_guide_names_exists():
    text = GUIDE.read_text()
    for path in set(re.findall(r"`((?:course|exercises|solutions)/[\w.-]+\.ipynb)`", text)):
        assert (PROJECT / path).is_file(), path
    for number, part in set(re.findall(r"Exercises? (\d+)(?:\.(\d+))?", text)):
        found = sorted((PROJECT / "exercises").glob(f"{int(number):02d}-*.ipynb"))
        assert found, f"Exercise {number}"
        headings = [c.source for c in nbformat.read(found[0], as_version=4).cells if c.cell_type == "markdown"]
        assert not part or any(f"## {number}.{part} " in h for h in headings), f"Exercise {number}.{part}"
    for row in re.findall(r"^\| [\d:]+ \| .* \| (\d\d)(?::|\s*\|)", text, re.MULTILINE):
        assert list((PROJECT / "course").glob(f"{row}-*.ipynb")), f"lecture {row} in an agenda"
