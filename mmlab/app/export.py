"""``mmlab export``: a static HTML copy of the course, for reading offline or projecting.

Each lecture notebook in ``course/`` becomes one page, converted by nbconvert's
``HTMLExporter`` (JupyterLab's look) from the outputs stored in the notebook; with
``--execute`` the notebooks are run first, on copies (``course/`` is never written). An
``index.html`` lists the lectures in order, with their sections. The pages load nothing
from the network:

- diagrams (``image/svg+xml`` outputs) are put inline as ``<svg>`` elements, so they are
  crisp when projected and searchable in the page;
- interactive widgets need a running kernel, so each one is replaced by a note that says
  which notebook to open in JupyterLab; nbconvert's widget renderer and require.js, which
  would be fetched from a CDN, are left out, and so is MathJax (the course has no LaTeX);
- links between lecture notebooks (``01-folios-and-thp.ipynb``) point at their pages.

The output folder is marked with a stamp file (``STAMP``) listing what the export wrote.
Running again replaces exactly those files; nothing else is ever deleted or overwritten. A
folder that is not an earlier export is refused unless ``--force`` (which adds the pages
beside what is there, still overwriting nothing), and the course folder always is.
"""

from __future__ import annotations

import argparse
import html
import json
import os
import re
import sys
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

import jinja2
import nbformat

STAMP = ".mmlab-export.json"
MADE_BY = "mmlab export"
INDEX = "index.html"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
PAGE_TEMPLATE_NAME = "mmlab-page.html.j2"

# nbconvert's JupyterLab template, minus everything it would fetch from a CDN, with the
# SVG diagrams inline (the stock template base64-encodes them into <img>, and its
# "skip_svg_encoding" option runs them through an HTML cleaner that escapes <svg>), and
# with a navigation bar on every page.
PAGE_TEMPLATE = """\
{%- extends 'index.html.j2' -%}
{%- block html_head_js -%}{%- endblock html_head_js -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{%- block jupyter_widgets -%}{%- endblock jupyter_widgets -%}
{%- block extra_css -%}
<style type="text/css">
nav.mmlab-nav { font-family: var(--jp-ui-font-family); font-size: var(--jp-ui-font-size1);
  padding: 8px 16px; border-bottom: 1px solid var(--jp-border-color2); }
nav.mmlab-nav a { margin-right: 1.5em; }
.mmlab-widget-note { border-left: 4px solid var(--jp-warn-color1); padding: 4px 12px;
  background: var(--jp-layout-color2); font-family: var(--jp-ui-font-family); }
</style>
{%- endblock extra_css -%}
{%- block body_header -%}{{ super() }}
{%- if resources.mmlab_nav %}<nav class="mmlab-nav">{{ resources.mmlab_nav }}</nav>{% endif -%}
{%- endblock body_header -%}
{% block data_svg scoped -%}
<div class="jp-RenderedSVG jp-OutputArea-output {{ extra_class }}" data-mime-type="image/svg+xml">
{{ output.data['image/svg+xml'] }}
</div>
{%- endblock data_svg %}
"""


class ExportError(ValueError):
    """Why nothing was exported (a bad folder, a refused output folder); says what to do."""


@dataclass(frozen=True)
class Lecture:
    """One course notebook and the page made from it."""

    notebook: Path
    title: str

    @property
    def page(self) -> str:
        return f"{self.notebook.stem}.html"


@dataclass(frozen=True)
class Export:
    """What an export wrote (file names inside ``out``) and what it warns about."""

    out: Path
    written: tuple[str, ...]
    removed: tuple[str, ...]
    warnings: tuple[str, ...]


def lectures(course: Path) -> list[Lecture]:
    """The course's notebooks in reading order (their file names start with the number)."""
    if not course.is_dir():
        raise ExportError(
            f"there is no folder {course}; run it in the project folder or say where the course is with --course DIR"
        )
    paths = sorted(course.glob("*.ipynb"))
    if not paths:
        raise ExportError(f"{course} has no notebooks to export")
    return [Lecture(path, title_of(nbformat.read(path, as_version=4), path.stem)) for path in paths]


def title_of(nb: nbformat.NotebookNode, fallback: str) -> str:
    """The text of the notebook's first level-1 heading (``# Lecture 1 · ...``), else ``fallback``."""
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            match = re.search(r"^#\s+(.+?)\s*#*\s*$", cell.source, re.MULTILINE)
            if match:
                return match.group(1)
    return fallback


def export_course(
    course: Path, out: Path, *, execute: bool = False, force: bool = False, timeout: float = 300
) -> Export:
    """Write the site for ``course`` into ``out``; ExportError (and nothing written) if refused."""
    found = lectures(course)
    previous = _previous_export(course, out, force)
    pages, warnings = {}, []
    exporter = _exporter()
    for position, lecture in enumerate(found):
        nb = nbformat.read(lecture.notebook, as_version=4)
        if execute:
            _execute(nb, lecture.notebook, timeout)
        elif not any(c.cell_type == "code" and c.execution_count for c in nb.cells):
            warnings.append(f"{lecture.notebook} has never been run: its page has no outputs (use --execute).")
        body, _ = exporter.from_notebook_node(static_copy(nb, lecture), resources={"mmlab_nav": _nav(found, position)})
        pages[lecture.page] = _link_pages(body, found)
    pages[INDEX] = _index_page(exporter, found, pages)
    return _write(out, pages, previous, warnings)


def static_copy(nb: nbformat.NotebookNode, lecture: Lecture) -> nbformat.NotebookNode:
    """The notebook as its page shows it: titled, each widget replaced by a note, no widget state."""
    nb = nbformat.from_dict(json.loads(json.dumps(nb)))
    nb.metadata["title"] = lecture.title
    nb.metadata.pop("widgets", None)
    note = (
        '<p class="mmlab-widget-note"><b>Interactive widget.</b> It needs a running Python kernel, so this '
        f"static copy cannot show it: open <code>course/{html.escape(lecture.notebook.name)}</code> in JupyterLab "
        "(<code>mmlab lab</code>) and run this cell.</p>"
    )
    for cell in nb.cells:
        for i, output in enumerate(cell.get("outputs", [])):
            if WIDGET_VIEW in output.get("data", {}):
                cell.outputs[i] = nbformat.v4.new_output(
                    "display_data", data={"text/html": note, "text/plain": "Interactive widget: open in JupyterLab"}
                )
    return nb


def _exporter():
    from nbconvert import HTMLExporter

    return HTMLExporter(
        template_name="lab",
        template_file=PAGE_TEMPLATE_NAME,
        extra_loaders=[jinja2.DictLoader({PAGE_TEMPLATE_NAME: PAGE_TEMPLATE})],
    )


def _execute(nb: nbformat.NotebookNode, path: Path, timeout: float) -> None:
    """Run ``nb`` (read from ``path``) in place, in the notebook's folder; ExportError if a cell fails."""
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError
    from nbconvert.preprocessors import ExecutePreprocessor

    try:
        ExecutePreprocessor(timeout=timeout, kernel_name="python3").preprocess(
            nb, {"metadata": {"path": str(path.parent)}}
        )
    except (CellExecutionError, CellTimeoutError, DeadKernelError) as error:
        last_line = str(error).strip().splitlines()[-1] if str(error).strip() else type(error).__name__
        raise ExportError(
            f"{path} failed when run ({last_line}); nothing was written. Fix it, or export without --execute "
            "to use the outputs saved in the notebooks."
        ) from None


def _nav(found: list[Lecture], position: int) -> str:
    """Links to the index and to the lectures before and after ``found[position]``."""
    links = [f'<a href="{INDEX}">Course index</a>']
    if position > 0:
        before = found[position - 1]
        links.append(f'<a href="{before.page}">&larr; {html.escape(before.title)}</a>')
    if position + 1 < len(found):
        after = found[position + 1]
        links.append(f'<a href="{after.page}">{html.escape(after.title)} &rarr;</a>')
    return "".join(links)


def _link_pages(body: str, found: list[Lecture]) -> str:
    """Links to a lecture notebook (``href="01-x.ipynb#..."``) made links to its page."""
    for lecture in found:
        body = body.replace(f'href="{lecture.notebook.name}', f'href="{lecture.page}')
    return body


class _Sections(HTMLParser):
    """The (id, text) of every ``<h2>`` in a page, as nbconvert rendered it."""

    def __init__(self):
        super().__init__()
        self.found: list[tuple[str, str]] = []
        self._current: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "h2" and dict(attrs).get("id"):
            self.found.append((dict(attrs)["id"], ""))
            self._current = []
        elif tag == "a" and self._current is not None and "anchor-link" in (dict(attrs).get("class") or ""):
            self._finish()

    def handle_data(self, data):
        if self._current is not None:
            self._current.append(data)

    def handle_endtag(self, tag):
        if tag == "h2" and self._current is not None:
            self._finish()

    def _finish(self):
        self.found[-1] = (self.found[-1][0], "".join(self._current).strip())
        self._current = None


def sections(page: str) -> list[tuple[str, str]]:
    """The (id, heading text) of each section (``<h2>``) of a rendered page."""
    parser = _Sections()
    parser.feed(page)
    return parser.found


def _index_page(exporter, found: list[Lecture], pages: dict[str, str]) -> str:
    items = []
    for lecture in found:
        links = "".join(
            f'<li><a href="{lecture.page}#{html.escape(anchor)}">{html.escape(text)}</a></li>'
            for anchor, text in sections(pages[lecture.page])
        )
        items.append(f'<li><a href="{lecture.page}">{html.escape(lecture.title)}</a><ul>{links}</ul></li>')
    nb = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_markdown_cell(
                "# mmlab: Linux memory management through one kernel patch series\n\n"
                "A static copy of the course, for reading offline or projecting, made by `mmlab export` "
                "from the notebooks and the outputs saved in them. The diagrams are here; the interactive "
                "widgets need a running kernel, so open the course in JupyterLab (`mmlab lab`) to use them "
                "and to run the code."
            ),
            nbformat.v4.new_markdown_cell(f'## The lectures, in reading order\n\n<ol start="0">{"".join(items)}</ol>'),
        ],
        metadata={"title": "mmlab: the course"},
    )
    body, _ = exporter.from_notebook_node(nb, resources={"mmlab_nav": ""})
    return body


def _previous_export(course: Path, out: Path, force: bool) -> list[str]:
    """The files an earlier export wrote into ``out``; ExportError if ``out`` may not be used."""
    if out.resolve() == course.resolve() or course.resolve() in out.resolve().parents:
        raise ExportError(f"{out} is inside the course folder {course}: choose another --out")
    if out.exists() and not out.is_dir():
        raise ExportError(f"{out} is a file, not a folder: choose another --out")
    stamp = out / STAMP
    if stamp.is_file():
        try:
            record = json.loads(stamp.read_text(encoding="utf-8"))
        except ValueError:
            record = None
        files = record.get("files") if isinstance(record, dict) and record.get("made_by") == MADE_BY else None
        if not isinstance(files, list) or not all(isinstance(f, str) and f == Path(f).name for f in files):
            raise ExportError(f"{stamp} is not a stamp that {MADE_BY} wrote; remove it or choose another --out")
        return files
    if out.is_dir() and any(out.iterdir()) and not force:
        raise ExportError(
            f"{out} is not empty and is not an earlier export (it has no {STAMP}). Choose another --out, "
            "or add --force to put the pages beside what is there (nothing there is deleted or overwritten)."
        )
    return []


def _write(out: Path, pages: dict[str, str], previous: list[str], warnings: list[str]) -> Export:
    clashes = sorted(name for name in pages if (out / name).exists() and name not in previous)
    if clashes:
        raise ExportError(f"{out} already has {', '.join(clashes)}, which no earlier export wrote; nothing was written")
    out.mkdir(parents=True, exist_ok=True)
    _write_stamp(out, sorted(set(previous) | set(pages)))  # an interrupted run leaves a stamp that covers it
    for name, text in pages.items():
        temporary = out / f".{name}.tmp"
        temporary.write_text(text, encoding="utf-8")
        os.replace(temporary, out / name)
    removed = sorted(set(previous) - set(pages))
    for name in removed:
        (out / name).unlink(missing_ok=True)
    _write_stamp(out, sorted(pages))
    return Export(out, tuple(pages), tuple(removed), tuple(warnings))


def _write_stamp(out: Path, files: list[str]) -> None:
    (out / STAMP).write_text(json.dumps({"made_by": MADE_BY, "files": files}, indent=1) + "\n", encoding="utf-8")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--out", type=Path, default=Path("build/site"), help="folder for the site (default: build/site)"
    )
    parser.add_argument("--course", type=Path, default=Path("course"), help="the lecture notebooks (default: course)")
    parser.add_argument(
        "--execute", action="store_true", help="run copies of the notebooks first instead of using their saved outputs"
    )
    parser.add_argument("--timeout", type=float, default=300, help="with --execute: seconds a cell may run")
    parser.add_argument(
        "--force", action="store_true", help="write into a non-empty folder that is not an earlier export"
    )


def run(args: argparse.Namespace) -> int:
    try:
        result = export_course(args.course, args.out, execute=args.execute, force=args.force, timeout=args.timeout)
    except ExportError as error:
        print(f"mmlab export: {error}", file=sys.stderr)
        return 2
    for warning in result.warnings:
        print(f"mmlab export: warning: {warning}", file=sys.stderr)
    for name in result.removed:
        print(f"removed {args.out / name} (an earlier export's page)")
    print(f"wrote {len(result.written)} pages to {args.out}/; open {args.out / INDEX} in a browser.")
    return 0
