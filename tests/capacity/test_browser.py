"""capacity.html in a real browser (Debian's chromium, headless, through the DevTools
harness of tests/report/test_browser.py): the committed example and a freshly rendered
page load with no console errors and their knee plot decoded."""

from __future__ import annotations

from pathlib import Path

import trio

from loadtool.capacity.report import knee_figure, render_html
from loadtool.report import page
from tests.report.test_browser import PageCheck, open_page

from .test_report import document

EXAMPLE = Path(__file__).resolve().parents[2] / "reports" / "capacity" / "capacity.html"


def assert_one_plot(check: PageCheck) -> None:
    assert check.errors == []
    (img,) = check.images
    assert img["alt"] == "latency percentiles and delivered throughput against offered load"
    assert img["complete"]
    assert img["width"] > 0
    assert img["height"] > 0


async def test_the_example_page_renders(tmp_path: Path) -> None:
    check = await open_page(EXAMPLE, tmp_path / "profile")
    assert check.title == "Capacity: fanout"
    assert_one_plot(check)


async def test_a_rendered_page_renders(tmp_path: Path) -> None:
    doc = document()
    html = render_html(doc, page.figure_to_data_uri(knee_figure(doc)))
    path = tmp_path / "capacity.html"
    await trio.Path(path).write_text(html)
    check = await open_page(path, tmp_path / "profile")
    assert check.title == "Capacity: sim"
    assert_one_plot(check)
