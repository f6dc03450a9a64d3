"""``tourviews demo`` end to end: simulated traffic, then the dashboard on its numbers.

``make screenshot`` runs this with ``TOURVIEWS_SCREENSHOTS=docs``: two weeks of traffic
(so that the default 7 days have a week before to be compared with), and the dashboard
at desktop and phone widths saved as docs/dashboard-desktop.png and dashboard-phone.png.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import orjson
from playwright.sync_api import Browser, Page, ViewportSize, expect

from tests.conftest import StartServer
from tourviews.demo import ACTIONS, GOALS, SCENES, TIMEZONE

SCREENSHOTS = os.environ.get("TOURVIEWS_SCREENSHOTS")  # a directory: make screenshot
WIDTHS: dict[str, ViewportSize] = {
    "desktop": {"width": 1280, "height": 900},
    "phone": {"width": 390, "height": 844},
}
FIGURES = (
    "views", "visitors", "visits", "engaged_seconds", "engaged_seconds_per_visit",
    "scenes_per_visit", "bounce_rate",
)  # fmt: skip


def tourviews(data_dir: Path, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "tourviews", *args, "--data", str(data_dir)],
        capture_output=True, text=True, check=True, timeout=300,
    )  # fmt: skip
    assert "Traceback" not in result.stderr
    return result.stdout


def test_demo_fills_every_figure_and_the_dashboard_shows_them(
    browser: Browser, data_dir: Path, start: StartServer
) -> None:
    printed = tourviews(data_dir, "demo", "--days", "14" if SCREENSHOTS else "2")
    token = re.search(r"^\s+(tv_\S+)$", printed, re.MULTILINE)
    assert token is not None
    assert "/dashboard#token=" in printed
    abuse = orjson.loads(tourviews(data_dir, "abuse", "--format", "json"))["totals"]
    for reason in ("counted", "bot", "duplicate", "rotation", "throttled", "outside_visit"):
        assert abuse[reason] > 0, reason
    today = datetime.now(ZoneInfo(TIMEZONE)).date()
    week = ("--from", str(today - timedelta(days=6)), "--to", str(today))  # the dashboard's default
    stats = orjson.loads(tourviews(data_dir, "stats", "demo", *week, "--format", "json"))
    assert stats["timezone"] == TIMEZONE
    assert all(stats["totals"][figure] > 0 for figure in FIGURES), stats["totals"]
    breakdown = stats["breakdown"]
    assert {row["key"] for row in breakdown["scene"]} == set(SCENES)
    assert all(row["engaged_seconds"] > 0 for row in breakdown["scene"])
    assert {row["key"] for row in breakdown["action"]} == {name for name, _ in ACTIONS}
    assert breakdown["entry_scene"] and breakdown["exit_scene"] and stats["transitions"]
    sources = {row["key"] for row in breakdown["source"]}
    assert {"krisha.kz", "google.com", "(direct)"} <= sources, sources
    assert {row["key"] for row in breakdown["channel"]} >= {"embed", "search", "direct"}
    assert "winter-sale" in {row["key"] for row in breakdown["utm_campaign"]}
    assert [goal["goal"] for goal in stats["goals"]] == list(GOALS)
    assert all(goal["visits"] > 0 for goal in stats["goals"]), stats["goals"]

    server = start(data_dir)
    errors: list[str] = []
    for name, viewport in WIDTHS.items():
        page = browser.new_page(viewport=viewport)
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(f"{server.url}/dashboard#token={token.group(1)}")
        expect(page.locator("#content")).to_have_attribute("aria-busy", "false")
        assert page.locator("#views").inner_text() == f"{stats['totals']['views']:,}"
        assert page.locator("#visits").inner_text() == f"{stats['totals']['visits']:,}"
        assert page.locator("#breakdown-action tr").count() == 1 + len(ACTIONS)
        expect(page.locator("#now")).to_have_text(re.compile(r"^\d+$"))
        assert page.evaluate("document.scrollingElement.scrollWidth <= innerWidth")
        assert errors == []
        if SCREENSHOTS:
            save(page, Path(SCREENSHOTS) / f"dashboard-{name}.png")
        page.close()


def save(page: Page, path: Path) -> None:
    """A full-page screenshot with the values of a day showing, as when a finger is on it."""
    assert page.locator("#now").inner_text() != "0", "the demo should end with people on the tour"
    page.locator("#chart svg").scroll_into_view_if_needed()
    chart = page.locator("#chart svg").bounding_box()
    assert chart is not None
    page.mouse.move(chart["x"] + chart["width"] * 0.72, chart["y"] + chart["height"] / 2)
    expect(page.locator("#chart .tip")).to_be_visible()
    page.screenshot(path=path, full_page=True)
