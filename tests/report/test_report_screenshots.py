"""Screenshots of reports, taken by the browser of the tests from runs of the shipped scenarios
on the scripted model (a compare run of the demo scenarios, a run of every workplace scenario).

They go to a temporary folder, or to ``$AGENTSIM_SCREENSHOTS_DIR`` when set; the README's are
made with ``AGENTSIM_SCREENSHOTS_DIR=docs/images pytest tests/report/test_report_screenshots.py``.
Every page carries the scripted model's banner: the numbers test the machinery, nothing more.
"""

from __future__ import annotations

import os
from pathlib import Path

from report_page import index_of

PNG = b"\x89PNG\r\n\x1a\n"
WIDTH = 1280


def _static_nav(page) -> None:
    # The sticky navigation bar would sit over every element screenshot (set through the
    # CSSOM: the page's policy admits no injected style element).
    page.evaluate("document.querySelector('nav').style.position = 'static'")


def _clip(page, selector: str, last: int | None = None, height: int = 1300) -> dict:
    """The clip of the first elements matching ``selector`` (up to element ``last``)."""
    boxes = page.locator(selector).evaluate_all(
        "nodes => nodes.map(n => { const r = n.getBoundingClientRect(); "
        "return [r.left + scrollX, r.top + scrollY, r.right + scrollX, r.bottom + scrollY]; })")
    boxes = boxes[:last] if last else boxes
    left, top = min(b[0] for b in boxes), min(b[1] for b in boxes)
    right, bottom = max(b[2] for b in boxes), max(b[3] for b in boxes)
    return {"x": max(0, left - 8), "y": max(0, top - 8), "width": min(WIDTH, right - left + 16),
            "height": min(height, bottom - top + 16)}


def take_screenshots(open_report, compare_run: Path, plain_run: Path, out: Path) -> list[Path]:
    """The README's screenshots of the two runs' reports, written into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    shots = []
    page = open_report(compare_run / "report.html").page
    _static_nav(page)
    shots.append(out / "report-overview.png")
    page.screenshot(path=shots[-1], full_page=True, clip=_clip(page, "header, nav, #overview", height=1100))
    shots.append(out / "report-headlines.png")
    page.screenshot(path=shots[-1], full_page=True, clip=_clip(page, "#headlines h2, #headlines table.headlines"))
    shots.append(out / "report-figures.png")
    page.screenshot(path=shots[-1], full_page=True, clip=_clip(page, "#figures figure", last=4))
    page.select_option("select[data-filter-name=outcome]", "changed_after_reflection")
    shots.append(out / "report-browser.png")
    page.screenshot(path=shots[-1], full_page=True, clip=_clip(page, "#browse h2, #filters, #pager, #list",
                                               height=900))

    page = open_report(plain_run / "report.html").page
    _static_nav(page)
    rows = index_of(plain_run / "report.html")["rows"]
    base = next(r["id"] for r in rows if r["variant"] == "base" and any(
        o["variant"] == "mirror" and o["scenario"] == r["scenario"] for o in rows))
    page.evaluate(f"location.hash = '#c={base}'")
    page.wait_for_selector(".conversation")
    shots.append(out / "report-conversation.png")
    page.screenshot(path=shots[-1], full_page=True, clip=_clip(page, ".conversation"))
    page.locator("button.side", has_text="mirror").click()
    page.wait_for_selector(".side-by-side")
    shots.append(out / "report-side-by-side.png")
    page.screenshot(path=shots[-1], full_page=True, clip=_clip(page, ".side-by-side"))
    return shots


def test_screenshots_of_the_shipped_scenarios(open_report, compare_run, plain_run, tmp_path):
    out = Path(os.environ.get("AGENTSIM_SCREENSHOTS_DIR") or tmp_path / "images")
    shots = take_screenshots(open_report, compare_run, plain_run, out)
    for path in shots:
        data = path.read_bytes()
        assert data.startswith(PNG) and len(data) > 10_000, path
