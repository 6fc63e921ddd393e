"""The course in a real browser: JupyterLab in headless Chromium (Debian's, driven by
Playwright; no browser download) opens a copy of a course notebook with its outputs
cleared, runs every cell, and must show every diagram and widget the notebook shows; then
the scenario explorer is used by clicking its buttons.

The screenshots land in build/browser/ (look at them: a test cannot judge a layout).
Skipped with the reason when Playwright or Chromium is missing, failed instead under CI.
"""

import json
import os
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
    notebook["cells"].append({"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None,
                              "source": EXPLORER_CELL})
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
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"{url}/api/status", timeout=2)
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"JupyterLab did not start:\n{(tmp_path / 'server.log').read_text()[-2000:]}")
                time.sleep(0.3)
        yield url, root
    finally:
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
            page.goto(f"{url}/lab/tree/{source.name}")
            page.wait_for_function(READY, arg=code_cells, polling=200, timeout=30_000)
            page.get_by_role("menuitem", name="Run", exact=True).click()
            page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
            page.wait_for_function(ALL_CELLS_RAN, polling=200, timeout=40_000)
            page.wait_for_function(READY, arg=code_cells, polling=200, timeout=10_000)

            assert page.locator(".jp-OutputArea-output.jp-RenderedSVG").count() == svgs
            assert page.locator(".jp-OutputArea-output.jp-RenderedSVG :is(img, svg)").count() == svgs
            assert page.locator(".jp-OutputArea-output .widget-vbox").count() >= widgets + 1
            assert page.locator(".jp-OutputArea-output.jp-mod-error, .jp-OutputArea-output[data-mime-type="
                                "'application/vnd.jupyter.stderr']").count() == 0
            page.locator(".jp-OutputArea-output.jp-RenderedSVG").first.scroll_into_view_if_needed()
            page.screenshot(path=SCREENSHOTS / "course-diagram.png")

            explorer = page.locator(".jp-OutputArea-output .widget-vbox").last
            assert explorer.locator("svg g.graph").count() == 1  # the page-table diagram, drawn by dot
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
