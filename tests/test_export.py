"""``mmlab export``: the static site of the course (pages, index, links, inline diagrams), and
the rules that keep it from deleting or overwriting anything that is not its own."""

import argparse
import hashlib
import json
import re
from pathlib import Path
from urllib.parse import unquote

import nbformat
import pytest

from mmlab.app import cli, export

PROJECT = Path(__file__).resolve().parent.parent
COURSE = PROJECT / "course"
SVG = '<svg width="40pt" height="20pt" xmlns="http://www.w3.org/2000/svg"><g class="graph"><text>PMD</text></g></svg>'


def run(*argv):
    parser = argparse.ArgumentParser()
    export.configure(parser)
    return export.run(parser.parse_args([str(a) for a in argv]))


def digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def links(page: str) -> list[str]:
    return re.findall(r'<a href="([^"#:]*)(?:#([^"]*))?"', page)


def ids(page: str) -> set[str]:
    return set(re.findall(r' id="([^"]*)"', page))


def lecture(title: str, *cells) -> nbformat.NotebookNode:
    return nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(f"# {title}\n\n## 1.1 First"), *cells])


def code(source: str, *outputs, count: int | None = 1) -> nbformat.NotebookNode:
    return nbformat.v4.new_code_cell(source, outputs=list(outputs), execution_count=count)


def shown(mime: str, value) -> nbformat.NotebookNode:
    return nbformat.v4.new_output("display_data", data={mime: value, "text/plain": "<shown>"})


@pytest.fixture
def tiny_course(tmp_path):
    """Two lectures: one with a diagram, a widget and a link to the other; one never run."""
    course = tmp_path / "course"
    course.mkdir()
    first = lecture(
        "Lecture 0 · Start",
        nbformat.v4.new_markdown_cell("Next: [lecture 1](01-next.ipynb#1.1-First)."),
        code("viz.page_tables_diagram(p)", shown("image/svg+xml", SVG)),
        code("viz.explorer_widget()", shown(export.WIDGET_VIEW, {"model_id": "x", "version_major": 2})),
    )
    first.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}}}
    nbformat.write(first, course / "00-start.ipynb")
    nbformat.write(lecture("Lecture 1 · Next", code("print(6 * 7)", count=None)), course / "01-next.ipynb")
    return course


# --- the site ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def course_site(tmp_path_factory):
    out = tmp_path_factory.mktemp("site")
    before = digest(COURSE)
    result = export.export_course(COURSE, out)
    assert digest(COURSE) == before, "mmlab export wrote into course/"
    return out, result


def test_every_lecture_gets_a_page_titled_by_its_first_heading_and_the_index_links_them_in_order(course_site):
    out, _ = course_site
    notebooks = sorted(COURSE.glob("*.ipynb"))
    assert len(notebooks) >= 9
    index = (out / "index.html").read_text()
    pages = [target for target, _ in links(index) if target and target != "index.html"]
    assert list(dict.fromkeys(pages)) == [f"{nb.stem}.html" for nb in notebooks]
    for notebook in notebooks:
        heading = next(
            line[2:]
            for cell in json.loads(notebook.read_text())["cells"]
            if cell["cell_type"] == "markdown"
            for line in "".join(cell["source"]).splitlines()
            if line.startswith("# ")
        )
        page = (out / f"{notebook.stem}.html").read_text()
        assert f"<title>{heading}</title>" in page
        assert f">{heading}</a>" in index


def test_every_link_in_the_site_resolves_to_a_page_and_section(course_site):
    out, _ = course_site
    for page in sorted(out.glob("*.html")):
        for target, fragment in links(page.read_text()):
            path = out / (target or page.name)
            assert path.is_file(), f"{page.name} links to {target}, which the export did not write"
            if fragment:
                assert unquote(fragment) in {unquote(i) for i in ids(path.read_text())}, (page.name, target, fragment)
    index = (out / "index.html").read_text()
    assert 'href="01-folios-and-thp.html#1.3-The-deposited-page-table"' in index  # a section named in COURSE.md


def test_every_stored_diagram_is_an_inline_svg_and_every_widget_a_note(course_site):
    out, _ = course_site
    for notebook in sorted(COURSE.glob("*.ipynb")):
        kinds = [
            k
            for c in json.loads(notebook.read_text())["cells"]
            for o in c.get("outputs", [])
            for k in o.get("data", {})
        ]
        page = (out / f"{notebook.stem}.html").read_text()
        assert page.count("<svg") >= kinds.count("image/svg+xml"), notebook.name
        assert '<img src="data:image/svg+xml' not in page
        assert page.count('class="mmlab-widget-note"') == kinds.count(export.WIDGET_VIEW), notebook.name
    assert sum((out / f"{nb.stem}.html").read_text().count("<svg") for nb in COURSE.glob("*.ipynb")) >= 9


def test_pages_load_nothing_from_the_network(course_site):
    out, _ = course_site
    for page in out.glob("*.html"):
        remote = re.findall(r'<(?:script|link|img|iframe)[^>]*(?:src|href)="(?:https?:)?//[^"]*"', page.read_text())
        assert remote == [], page.name


def test_the_command_says_where_to_open_the_site(tiny_course, tmp_path, capsys):
    assert run("--course", tiny_course, "--out", tmp_path / "site") == 0
    out, err = capsys.readouterr()
    assert f"open {tmp_path / 'site' / 'index.html'} in a browser" in out
    assert "01-next.ipynb has never been run" in err  # its page would have no outputs


def test_a_small_course_page_has_its_diagram_a_widget_note_and_a_link_to_the_next_page(tiny_course, tmp_path):
    export.export_course(tiny_course, tmp_path / "site")
    page = (tmp_path / "site" / "00-start.html").read_text()
    assert re.search(r'<svg [^>]*width="40pt"[^>]*><g class="graph"><text>PMD</text></g></svg>', page)
    assert (
        "Interactive widget." in page
        and "course/00-start.ipynb" in page
        and "application/vnd.jupyter.widget" not in page
    )
    assert 'href="01-next.html#1.1-First"' in page and 'href="01-next.html">Lecture 1 · Next →' in page


def test_execute_runs_copies_and_shows_their_outputs(tmp_path):
    course = tmp_path / "course"
    course.mkdir()
    nbformat.write(lecture("Lecture 1 · Next", code("print(6 * 7)", count=None)), course / "01-next.ipynb")
    before = digest(course)
    result = export.export_course(course, tmp_path / "site", execute=True)
    assert "42" in (tmp_path / "site" / "01-next.html").read_text()
    assert result.warnings == () and digest(course) == before


def test_a_notebook_that_fails_under_execute_stops_the_export_with_its_name(tmp_path, capsys):
    course = tmp_path / "course"
    course.mkdir()
    nbformat.write(lecture("Lecture 1 · Broken", code("1 / 0", count=None)), course / "01-broken.ipynb")
    assert run("--course", course, "--out", tmp_path / "site", "--execute") == 2
    err = capsys.readouterr().err
    assert "01-broken.ipynb failed when run" in err and "ZeroDivisionError" in err
    assert not (tmp_path / "site").exists()


# --- what it may write over --------------------------------------------------------------


def test_a_second_export_replaces_its_own_pages_and_keeps_everything_else(tiny_course, tmp_path, capsys):
    site = tmp_path / "site"
    export.export_course(tiny_course, site)
    (site / "notes.txt").write_text("mine")
    (tiny_course / "01-next.ipynb").rename(tiny_course / "02-renamed.ipynb")
    assert run("--course", tiny_course, "--out", site) == 0
    assert f"removed {site / '01-next.html'}" in capsys.readouterr().out
    assert sorted(p.name for p in site.iterdir()) == [
        ".mmlab-export.json",
        "00-start.html",
        "02-renamed.html",
        "index.html",
        "notes.txt",
    ]
    assert (site / "notes.txt").read_text() == "mine"


def test_a_folder_that_is_not_an_export_is_refused_and_force_adds_beside_without_overwriting(
    tiny_course, tmp_path, capsys
):
    site = tmp_path / "public"
    site.mkdir()
    (site / "talk.pdf").write_text("slides")
    assert run("--course", tiny_course, "--out", site) == 2
    assert "is not an earlier export" in capsys.readouterr().err
    assert sorted(p.name for p in site.iterdir()) == ["talk.pdf"]

    assert run("--course", tiny_course, "--out", site, "--force") == 0
    assert (site / "talk.pdf").read_text() == "slides" and (site / "index.html").is_file()

    clash = tmp_path / "clash"
    clash.mkdir()
    (clash / "index.html").write_text("my own home page")
    assert run("--course", tiny_course, "--out", clash, "--force") == 2
    assert "already has index.html" in capsys.readouterr().err
    assert sorted(p.name for p in clash.iterdir()) == ["index.html"]
    assert (clash / "index.html").read_text() == "my own home page"


@pytest.mark.parametrize("where", [".", "site", "sub/site"])
def test_the_course_folder_is_never_written_even_with_force(tiny_course, where, capsys):
    before = digest(tiny_course)
    assert run("--course", tiny_course, "--out", tiny_course / where, "--force") == 2
    assert "inside the course folder" in capsys.readouterr().err
    assert digest(tiny_course) == before


def test_a_stamp_it_did_not_write_is_refused(tiny_course, tmp_path, capsys):
    site = tmp_path / "site"
    site.mkdir()
    (site / export.STAMP).write_text(json.dumps({"made_by": export.MADE_BY, "files": ["../../etc/passwd"]}))
    assert run("--course", tiny_course, "--out", site) == 2
    assert "is not a stamp that mmlab export wrote" in capsys.readouterr().err


def test_a_missing_or_empty_course_folder_is_a_clear_error(tmp_path, capsys):
    assert run("--course", tmp_path / "nope", "--out", tmp_path / "site") == 2
    err = capsys.readouterr().err
    assert "there is no folder" in err and "--course DIR" in err
    assert run("--course", tmp_path, "--out", tmp_path / "site") == 2
    assert "has no notebooks to export" in capsys.readouterr().err
    assert not (tmp_path / "site").exists()


def test_export_is_in_the_command_table():
    assert cli.COMMANDS["export"][0] == "mmlab.app.export"
