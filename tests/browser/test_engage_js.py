"""engage.js and counter.js in a real Chromium, on a page of another origin.

The page's clock is Playwright's: Date.now() says what the test sets, so the
engaged seconds the browser reports are exact.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from playwright.sync_api import Browser, BrowserContext, Page

from tests.browser.conftest import command, desktop_agent
from tests.conftest import ServerProcess, StartServer, visitor

TOUR = """<!doctype html><html><head><title>A tour</title>
<script src="{service}/beacon.js" data-tour="t1" defer></script>
<script src="{service}/engage.js" defer></script></head>
<body><h1>A 3D tour</h1></body></html>"""
COUNTERS = """<!doctype html><html><head><title>Counters</title>
<script src="{service}/counter.js" defer></script></head>
<body><p>Seen <span id="open" data-tourviews-counter="t1"></span> times</p>
<p>Private: <span id="closed" data-tourviews-counter="t2">hidden</span></p></body></html>"""
T0 = datetime(2026, 11, 24, 12, 0)


@pytest.fixture
def service(data_dir: Path, start: StartServer) -> tuple[ServerProcess, str]:
    command(data_dir, "tours", "add", "t1", "--org", "acme", "--public-counter")
    command(data_dir, "tours", "add", "t2", "--org", "acme")
    token = command(data_dir, "tokens", "create", "--org", "acme")
    return start(data_dir), token


@pytest.fixture
def pages(service: tuple[ServerProcess, str], host_site: tuple[str, Path]) -> str:
    site, folder = host_site
    (folder / "tour.html").write_text(TOUR.format(service=service[0].url))
    (folder / "counters.html").write_text(COUNTERS.format(service=service[0].url))
    return site


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    context = browser.new_context(user_agent=desktop_agent(browser))
    yield context
    context.close()


def stats(service: tuple[ServerProcess, str]) -> Any:
    server, token = service
    auth = {"Authorization": f"Bearer {token}"}
    return httpx.get(f"{server.url}/v1/tours/t1/stats", headers=auth).json()


def settle(service: tuple[ServerProcess, str], ready: Any, seconds: float = 10) -> Any:
    """The stats document once ``ready(document)`` holds (beacons go in the background)."""
    deadline = time.monotonic() + seconds
    while not ready(document := stats(service)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return document


def at(page: Page, seconds: float) -> None:
    """The page's clock reads T0 + ``seconds``; the mouse moves, as a viewer's does."""
    page.clock.set_fixed_time(T0 + timedelta(seconds=seconds))
    page.mouse.move(10 + seconds, 10)


def test_visible_time_per_scene_and_an_action_reach_the_stats(
    context: BrowserContext, service: tuple[ServerProcess, str], pages: str
) -> None:
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.clock.set_fixed_time(T0)
    page.goto(f"{pages}/tour.html")
    page.wait_for_load_state("load")
    settle(service, lambda d: d["totals"]["views"] == 1)
    page.evaluate("tourviews.scene('lobby')")
    at(page, 30)
    page.evaluate("tourviews.scene('kitchen')")
    at(page, 50)
    page.evaluate("tourviews.action('lead-form')")
    page.close(run_before_unload=True)  # pagehide: the kitchen's 20 seconds go with keepalive
    document = settle(service, lambda d: d["totals"]["engaged_seconds"] >= 50)
    assert document["totals"]["visits"] == 1
    assert document["totals"]["engaged_seconds"] == 50
    assert {r["key"]: r["engaged_seconds"] for r in document["breakdown"]["scene"]} == {
        "lobby": 30, "kitchen": 20,
    }  # fmt: skip
    assert document["breakdown"]["action"] == [{"key": "lead-form", "count": 1, "visitors": 1}]
    assert document["transitions"] == [{"from": "lobby", "to": "kitchen", "visits": 1}]
    assert errors == []


def test_hidden_time_and_idle_time_are_not_counted(
    context: BrowserContext, service: tuple[ServerProcess, str], pages: str
) -> None:
    page = context.new_page()
    page.clock.set_fixed_time(T0)
    page.goto(f"{pages}/tour.html")
    page.wait_for_load_state("load")
    page.evaluate("tourviews.scene('lobby')")
    at(page, 10)
    # hidden (another tab): 10 seconds go at once, and the next 10 minutes do not count
    page.evaluate(
        "Object.defineProperty(document, 'visibilityState', {value: 'hidden', configurable: true});"
        "document.dispatchEvent(new Event('visibilitychange'))"
    )
    assert (
        settle(service, lambda d: d["totals"]["engaged_seconds"] > 0)["totals"]["engaged_seconds"]
        == 10
    )
    page.clock.set_fixed_time(T0 + timedelta(minutes=10))
    page.evaluate(
        "Object.defineProperty(document, 'visibilityState', {value: 'visible', configurable: "
        "true}); document.dispatchEvent(new Event('visibilitychange'))"
    )
    # visible again, then left untouched for an hour: a minute after the last input counts
    page.clock.set_fixed_time(T0 + timedelta(minutes=70))
    page.evaluate("tourviews.scene('hall')")
    document = settle(service, lambda d: d["totals"]["engaged_seconds"] > 10)
    assert document["totals"]["engaged_seconds"] == 70
    assert {r["key"]: r["engaged_seconds"] for r in document["breakdown"]["scene"]} == {
        "lobby": 70, "hall": 0,
    }  # fmt: skip


def test_counter_js_fills_a_public_counter_and_leaves_a_private_one(
    context: BrowserContext, service: tuple[ServerProcess, str], pages: str
) -> None:
    server, _ = service
    for _ in range(3):
        body = orjson.dumps({"tour": "t1", "visitor": visitor()})
        headers = {"Content-Type": "text/plain", "User-Agent": desktop_agent(context.browser)}  # type: ignore[arg-type]
        assert (
            httpx.post(f"{server.url}/v1/beacon", content=body, headers=headers).status_code == 204
        )
    page = context.new_page()
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.goto(f"{pages}/counters.html")
    page.wait_for_function("document.getElementById('open').textContent !== ''")
    assert page.text_content("#open") == "3"
    page.wait_for_timeout(300)
    assert page.text_content("#closed") == "hidden"  # its tour has no public counter: 404
    assert all(url.startswith((pages, server.url)) for url in requests)
