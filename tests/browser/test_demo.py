"""``tourviews demo`` end to end: simulated traffic, then the dashboard on its numbers."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import orjson
from playwright.sync_api import Browser, expect

from tests.conftest import StartServer

SCREENSHOT = os.environ.get("TOURVIEWS_SCREENSHOT")  # make screenshot: docs/dashboard.png


def tourviews(data_dir: Path, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "tourviews", *args, "--data", str(data_dir)],
        capture_output=True, text=True, check=True, timeout=300,
    )  # fmt: skip
    assert "Traceback" not in result.stderr
    return result.stdout


def test_demo_fills_a_week_and_the_dashboard_shows_it(
    browser: Browser, data_dir: Path, start: StartServer
) -> None:
    days = 7 if SCREENSHOT else 2
    printed = tourviews(data_dir, "demo", "--days", str(days))
    token = re.search(r"^\s+(tv_\S+)$", printed, re.MULTILINE)
    assert token is not None
    abuse = orjson.loads(tourviews(data_dir, "abuse", "--format", "json"))["totals"]
    assert abuse["counted"] > 0 and abuse["bot"] > 0 and abuse["duplicate"] > 0
    assert abuse["rotation"] > 0 and abuse["throttled"] > 0
    stats = orjson.loads(tourviews(data_dir, "stats", "demo", "--format", "json"))
    assert stats["totals"]["views"] > 0
    assert len(stats["breakdown"]["scene"]) == 5
    assert "/dashboard#token=" in printed

    server = start(data_dir)
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(f"{server.url}/dashboard#token={token.group(1)}")
    expect(page.locator("#views")).to_have_text(f"{stats['totals']['views']:,}")
    expect(page.locator("#visitors")).to_have_text(f"{stats['totals']['visitors']:,}")
    assert errors == []
    if SCREENSHOT:
        page.screenshot(path=SCREENSHOT, full_page=True)
    page.close()
