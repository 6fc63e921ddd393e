"""The exported site in a real browser: headless Chromium (Debian's, driven by Playwright)
opens the index from file://, follows the link to a lecture, and must show its diagrams.

Screenshots land in build/export/ (look at them: a test cannot judge a layout).
"""

import json
from pathlib import Path

import nbformat
import pytest

from mmlab.app import doctor, export

pytestmark = pytest.mark.browser

PROJECT = Path(__file__).resolve().parent.parent
SCREENSHOTS = PROJECT / "build" / "export"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def first_lecture_with_a_diagram() -> tuple[Path, int]:
    for notebook in sorted((PROJECT / "course").glob("*.ipynb")):
        kinds = [key for cell in json.loads(notebook.read_text())["cells"]
                 for out in cell.get("outputs", []) for key in out.get("data", {})]
        if kinds.count("image/svg+xml"):
            return notebook, kinds.count("image/svg+xml")
    pytest.fail("no course notebook has a stored diagram to look for")


def test_the_index_opens_from_file_and_a_lecture_shows_its_diagrams(tmp_path):
    from playwright.sync_api import expect, sync_playwright

    site = tmp_path / "site"
    export.export_course(PROJECT / "course", site)
    notebook, diagrams = first_lecture_with_a_diagram()
    title = export.title_of(nbformat.read(notebook, as_version=4), notebook.stem)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    with sync_playwright() as pw:
        browser = pw.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"), executable_path=doctor.find_chromium(), headless=True,
            args=CHROMIUM_ARGS, viewport={"width": 1280, "height": 900})
        page = browser.new_page()
        failed_requests = []
        page.on("requestfailed", lambda request: failed_requests.append(request.url))
        try:
            page.goto((site / "index.html").as_uri())
            expect(page).to_have_title("mmlab: the course")
            page.screenshot(path=SCREENSHOTS / "index.png")

            page.get_by_role("link", name=title, exact=True).click()
            expect(page).to_have_url((site / f"{notebook.stem}.html").as_uri())
            drawn = page.locator(".jp-RenderedSVG > svg")
            expect(drawn).to_have_count(diagrams)
            first = drawn.first
            first.scroll_into_view_if_needed()
            expect(first).to_be_visible()
            box = first.bounding_box()
            assert box and box["width"] > 100 and box["height"] > 30, box  # drawn at a readable size
            assert first.locator("g.node").count() > 0  # Graphviz's nodes, not an empty frame
            page.screenshot(path=SCREENSHOTS / "lecture-diagram.png")

            notes = page.locator(".mmlab-widget-note")
            if notes.count():  # where the lecture had a widget, the page says where to use it
                notes.first.scroll_into_view_if_needed()
                expect(notes.first).to_be_visible()
                expect(notes.first).to_contain_text(f"open course/{notebook.name} in JupyterLab")
                page.screenshot(path=SCREENSHOTS / "lecture-widget-note.png")

            page.get_by_role("link", name="Course index").first.click()
            expect(page).to_have_url((site / "index.html").as_uri())
            assert failed_requests == []
        except Exception:
            page.screenshot(path=SCREENSHOTS / "failure.png")
            raise
        finally:
            browser.close()
