"""The course in a real browser: JupyterLab in headless Chromium (Debian's, driven by
Playwright; no browser download) opens a copy of a course notebook with its outputs
cleared, runs every cell, and must show every diagram and widget the notebook shows; then
the scenario explorer is used by clicking its buttons. A second notebook shows the widest
things the course draws, which must fit: every diagram label inside its box, diagram text
large enough to read, the side-by-side profile diff no wider than the notebook. Last, a
learner's first start: ``mmlab lab`` on a copy of the project, as a newcomer would run it,
opens the landing page, whose links open the learner's own copies of the exercises, and
writes nothing outside the project.

The screenshots land in build/browser/ (look at them: a test cannot judge a layout).
Skipped with the reason when Playwright or Chromium is missing, failed instead under CI.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from mmlab.app import doctor

pytestmark = pytest.mark.browser

PROJECT = Path(__file__).resolve().parent.parent
SCREENSHOTS = PROJECT / "build" / "browser"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
# JupyterLab settings for a test: start the notebook's kernel without asking, render every
# cell (not only those in view), and never ask about or fetch news.
LAB_SETTINGS = {
    "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none", "autoStartDefaultKernel": True},
    "@jupyterlab/apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
}
EXPLORER_CELL = 'from mmlab import MiB, viz\n\nviz.explorer_widget("6.11", 4 * MiB)'


def course_notebook() -> Path:
    found = sorted(PROJECT.glob("course/01-*.ipynb"))
    if not found:
        pytest.fail("no course/01-*.ipynb to open: the browser test runs the first lecture")
    return found[0]


def shown_outputs(notebook: dict) -> tuple[int, int]:
    """How many diagrams (SVG) and widgets a notebook's stored outputs show."""
    kinds = [key for cell in notebook["cells"] for out in cell.get("outputs", []) for key in out.get("data", {})]
    return kinds.count("image/svg+xml"), kinds.count("application/vnd.jupyter.widget-view+json")


def cleared(notebook: dict) -> dict:
    """The notebook with no outputs, so that whatever the browser shows, the kernel made."""
    notebook = json.loads(json.dumps(notebook))
    notebook["metadata"].pop("widgets", None)
    for cell in notebook["cells"]:
        if cell["cell_type"] == "code":
            cell["outputs"], cell["execution_count"] = [], None
    notebook["cells"].append(code_cell(EXPLORER_CELL))
    return notebook


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def lab(tmp_path):
    """A JupyterLab server on loopback serving ``tmp_path/root``, with every per-user
    Jupyter file under ``tmp_path``; yields its URL and stops it (and its kernels) after."""
    root = tmp_path / "root"
    root.mkdir()
    for name, values in LAB_SETTINGS.items():
        path = tmp_path / "settings" / f"{name}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    env = {**os.environ, "PYTHONPATH": str(PROJECT), "JUPYTER_CONFIG_DIR": str(tmp_path / "config"),
           "JUPYTER_DATA_DIR": str(tmp_path / "data"), "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
           "IPYTHONDIR": str(tmp_path / "ipython")}
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--allow-root", f"--port={port}",
         "--ServerApp.ip=127.0.0.1", "--ServerApp.token=", "--ServerApp.password=", f"--ServerApp.root_dir={root}",
         f"--LabApp.user_settings_dir={tmp_path / 'settings'}", f"--LabApp.workspaces_dir={tmp_path / 'workspaces'}",
         "--LabApp.news_url=None", "--LabApp.extension_manager=readonly"],
        env=env, stdout=subprocess.DEVNULL, stderr=(tmp_path / "server.log").open("w"),
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(url, server, tmp_path / "server.log")
        yield url, root
    finally:
        stop(server)


def wait_for(url: str, server: subprocess.Popen, log: Path) -> None:
    """Wait until the JupyterLab ``server`` answers at ``url``; fail with its log if it does not."""
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(f"{url}/api/status", timeout=2)
            return
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"JupyterLab did not start:\n{log.read_text()[-2000:]}")
            time.sleep(0.3)


def stop(server: subprocess.Popen) -> None:
    server.send_signal(signal.SIGINT)  # twice: stop without asking, shutting down the kernels
    time.sleep(0.2)
    server.send_signal(signal.SIGINT)
    try:
        server.wait(timeout=15)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


# The notebook is loaded and its kernel has started: every code cell is there and the
# status bar says the kernel is idle.
READY = """(codeCells) => document.querySelectorAll('.jp-CodeCell').length === codeCells
    && [...document.querySelectorAll('.jp-StatusBar-TextItem')].some(item => /\\| Idle$/.test(item.textContent))"""

ALL_CELLS_RAN = """() => {
    const prompts = [...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')];
    return prompts.length > 0 && prompts.every(p => /\\[\\d+\\]/.test(p.textContent));
}"""


def code_cell(source: str) -> dict:
    return {"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None, "source": source}


def open_and_run_all(page, url: str, name: str, code_cells: int) -> None:
    """Open notebook ``name`` in the Lab at ``url``, run all its cells, wait until they ran."""
    page.goto(f"{url}/lab/tree/{name}")
    page.wait_for_function(READY, arg=code_cells, polling=200, timeout=30_000)
    page.get_by_role("menuitem", name="Run", exact=True).click()
    page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
    page.wait_for_function(ALL_CELLS_RAN, polling=200, timeout=40_000)
    page.wait_for_function(READY, arg=code_cells, polling=200, timeout=10_000)


def test_a_course_notebook_runs_and_shows_its_diagrams_and_widgets(lab, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    url, root = lab
    source = course_notebook()
    stored = json.loads(source.read_text())
    svgs, widgets = shown_outputs(stored)
    assert svgs and widgets, f"{source.name} shows no diagram or no widget: pick a lecture that does"
    notebook = cleared(stored)
    (root / source.name).write_text(json.dumps(notebook))
    code_cells = sum(cell["cell_type"] == "code" for cell in notebook["cells"])
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    with sync_playwright() as pw:
        browser = pw.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"), executable_path=doctor.find_chromium(), headless=True,
            args=CHROMIUM_ARGS, viewport={"width": 1400, "height": 1000})
        page = browser.new_page()
        try:
            open_and_run_all(page, url, source.name, code_cells)

            assert page.locator(".jp-OutputArea-output.jp-RenderedSVG").count() == svgs
            assert page.locator(".jp-OutputArea-output.jp-RenderedSVG :is(img, svg)").count() == svgs
            assert page.locator(".jp-OutputArea-output .widget-vbox").count() >= widgets + 1
            assert page.locator(".jp-OutputArea-output.jp-mod-error, .jp-OutputArea-output[data-mime-type="
                                "'application/vnd.jupyter.stderr']").count() == 0
            page.locator(".jp-OutputArea-output.jp-RenderedSVG").first.scroll_into_view_if_needed()
            page.screenshot(path=SCREENSHOTS / "course-diagram.png")
            for diagram in page.evaluate(DIAGRAM_FIT):
                assert diagram["overflowing"] == [], f"labels outside their boxes in {diagram['title']}"
                assert diagram["width"] <= diagram["column"] + 1, f"{diagram['title']} is wider than the notebook"

            explorer = page.locator(".jp-OutputArea-output .widget-vbox").last
            assert explorer.locator("svg g.graph").count() == 1  # the page-table diagram
            for button in ("write", "MADV_FREE"):
                explorer.get_by_role("button", name=button, exact=True).click()
            expect(explorer).to_contain_text("madvise(a, 4 MiB, MADV_FREE) -> ok", timeout=10_000)
            expect(explorer).to_contain_text("LazyFree")
            expect(explorer).to_contain_text("pglazyfree")
            explorer.scroll_into_view_if_needed()
            explorer.screenshot(path=SCREENSHOTS / "explorer.png")
        except Exception:
            page.screenshot(path=SCREENSHOTS / "failure.png")  # what the browser showed when it failed
            raise
        finally:
            browser.close()


# The widest drawings the course makes: the LRU lists with folios on three of them, page tables
# of 8 MiB mixing huge, split and empty slots, a reverse map after two forks, and the profile
# diff side by side (lecture 6, section 6.7).
WIDE_CELLS = [
    """from IPython.display import HTML
from mmlab import MADV_FREE, MADV_HUGEPAGE, MADV_PAGEOUT, Machine, MiB, viz

m = Machine(kernel="6.11")
p = m.spawn()
a = p.mmap(8 * MiB)
p.madvise(a, 8 * MiB, MADV_HUGEPAGE)
p.write(a, 8 * MiB)
p.madvise(a + 2 * MiB, 4096, MADV_PAGEOUT)
p.madvise(a, 2 * MiB, MADV_FREE)
p.mlock(a + 6 * MiB, 2 * MiB)
child = p.fork()
grandchild = child.fork()""",
    "viz.lru_diagram(m)",
    "viz.page_tables_diagram(p, a, 8 * MiB)",
    "viz.rmap_diagram(m.folios[min(m.folios)])",
    'HTML(viz.profile_diff_html("try_to_unmap_one", "6.11-v6", "6.18", side_by_side=True))',
]

# For every diagram on the page: how many labels stick out of the box drawn around them (by
# more than half a pixel), and the smallest label font size as the screen shows it, in CSS pixels.
# JupyterLab shows SVG output as an <img>, whose inside a page cannot see: each one is laid
# out again as inline SVG, off screen, at the width the image has on screen.
DIAGRAM_FIT = """() => [...document.querySelectorAll('.jp-RenderedSVG img')].map(img => {
    const copy = document.createElement('div');
    copy.style = `position: absolute; left: -20000px; top: 0; width: ${img.clientWidth}px`;
    copy.innerHTML = decodeURIComponent(img.src.slice(img.src.indexOf(',') + 1));
    document.body.appendChild(copy);
    const svg = copy.querySelector('svg'), overflowing = [];
    for (const node of svg.querySelectorAll('g.node')) {
        const boxes = [...node.querySelectorAll('polygon')].map(p => p.getBBox());
        for (const text of node.querySelectorAll('text')) {
            const t = text.getBBox(), x = t.x + 0.5, y = t.y + t.height / 2;
            const box = boxes.filter(b => b.x <= x && x <= b.x + b.width && b.y <= y && y <= b.y + b.height)
                             .sort((p, q) => p.width * p.height - q.width * q.height)[0];
            const outside = box && (t.x + t.width > box.x + box.width + 0.5 || t.x < box.x - 0.5);
            if (outside) overflowing.push(text.textContent);
        }
    }
    const sizes = [...svg.querySelectorAll('g.node text')].map(
        t => parseFloat(t.getAttribute('font-size')) * t.getScreenCTM().a);
    const found = {title: svg.querySelector('title').textContent, overflowing, smallest: Math.min(...sizes),
                   width: img.getBoundingClientRect().width, column: img.parentElement.getBoundingClientRect().width};
    copy.remove();
    return found;
})"""


def test_the_widest_drawings_fit_the_notebook_and_can_be_read(lab, tmp_path):
    from playwright.sync_api import sync_playwright

    url, root = lab
    notebook = {"cells": [code_cell(source) for source in WIDE_CELLS], "metadata": {}, "nbformat": 4,
                "nbformat_minor": 5}
    (root / "wide.ipynb").write_text(json.dumps(notebook))
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    with sync_playwright() as pw:
        browser = pw.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"), executable_path=doctor.find_chromium(), headless=True,
            args=CHROMIUM_ARGS, viewport={"width": 1280, "height": 900})  # a laptop's screen
        page = browser.new_page()
        try:
            open_and_run_all(page, url, "wide.ipynb", len(WIDE_CELLS))
            outputs = page.locator(".jp-OutputArea-output")
            for i, name in enumerate(["lru", "page-tables", "rmap", "side-by-side-diff"]):
                outputs.nth(i).scroll_into_view_if_needed()
                page.screenshot(path=SCREENSHOTS / f"wide-{name}.png")

            diagrams = page.evaluate(DIAGRAM_FIT)
            assert [d["title"].split()[0] for d in diagrams] == ["lru", "page", "rmap"]
            for diagram in diagrams:
                assert diagram["overflowing"] == [], f"labels outside their boxes in {diagram['title']}"
                assert diagram["width"] <= diagram["column"] + 1, f"{diagram['title']} is wider than the notebook"
                assert diagram["smallest"] >= 7.5, f"text of {diagram['title']} is {diagram['smallest']:.1f} px high"
            assert diagrams[0]["smallest"] >= 11  # the LRU lists, two columns wide, are read at almost full size

            diff = outputs.nth(3)
            area, table = diff.bounding_box(), diff.locator("table").bounding_box()
            assert table["x"] + table["width"] <= area["x"] + area["width"] + 1, "the diff is wider than the notebook"
            assert diff.evaluate("e => e.scrollWidth <= e.clientWidth + 1"), "the diff scrolls sideways"
        except Exception:
            page.screenshot(path=SCREENSHOTS / "failure.png")
            raise
        finally:
            browser.close()


def test_a_newcomer_lands_on_the_start_page_and_reaches_the_exercises(tmp_path):
    from playwright.sync_api import expect, sync_playwright

    project, home = tmp_path / "project", tmp_path / "home"
    for name in ("course", "exercises"):
        shutil.copytree(PROJECT / name, project / name)
    shutil.copy(PROJECT / "START-HERE.md", project)  # the lectures and exercises, and the landing page
    home.mkdir()
    for name, values in LAB_SETTINGS.items():  # where mmlab lab has JupyterLab look for them
        path = project / ".jupyter/config/lab/user-settings" / f"{name}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    env = {key: value for key, value in os.environ.items() if not key.startswith(("JUPYTER", "IPYTHON"))}
    env.update(HOME=str(home), PYTHONPATH=str(PROJECT))
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "mmlab", "lab", "--dir", str(project), "--no-browser", "--port", str(port), "--",
         "--ServerApp.ip=127.0.0.1", "--ServerApp.token=", "--ServerApp.password=", "--LabApp.news_url=None"],
        env=env, stdout=subprocess.DEVNULL, stderr=(tmp_path / "server.log").open("w"))
    url = f"http://127.0.0.1:{port}"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    try:
        wait_for(url, server, tmp_path / "server.log")
        with sync_playwright() as pw:
            browser = pw.chromium.launch_persistent_context(
                str(tmp_path / "chromium-profile"), executable_path=doctor.find_chromium(), headless=True,
                args=CHROMIUM_ARGS, viewport={"width": 1280, "height": 900})
            page = browser.new_page()
            try:
                page.goto(url)  # what the browser mmlab lab opens is sent to
                expect(page.locator(".jp-RenderedMarkdown h1").first).to_contain_text("mmlab: start here",
                                                                                     timeout=30_000)
                page.screenshot(path=SCREENSHOTS / "start-here.png")
                assert page.locator(".jp-Notebook").count() == 0  # the landing page is a preview: no kernel
                page.get_by_role("link", name="Pages, folios and THP").last.click()  # the exercises' one
                expect(page.locator(".jp-RenderedMarkdown h1").filter(has_text="Exercises · Lecture 1")
                       .first).to_be_visible(timeout=30_000)
                assert page.url.endswith("/lab/tree/my-work/exercises/01-folios-and-thp.ipynb")  # the learner's copy
                page.screenshot(path=SCREENSHOTS / "start-here-exercise.png")
            except Exception:
                page.screenshot(path=SCREENSHOTS / "failure.png")
                raise
            finally:
                browser.close()
    finally:
        stop(server)
    assert (project / "my-work/exercises/01-folios-and-thp.ipynb").is_file()
    assert list(home.iterdir()) == []  # no per-user file of Jupyter's or IPython's in the home
    assert sorted(p.name for p in tmp_path.iterdir()) == ["chromium-profile", "home", "project", "server.log"]
