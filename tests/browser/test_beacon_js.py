"""beacon.js in a real Chromium, embedded by a page on another origin."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page

from tests.browser.conftest import command, desktop_agent
from tests.conftest import ServerProcess, found

PAGE = """<!doctype html><html><head><title>A tour</title>
<script src="{service}/beacon.js" data-tour="t1" {extra} defer></script></head>
<body><h1>A 3D tour</h1></body></html>"""


@pytest.fixture
def tour_url(service: tuple[ServerProcess, str], host_site: tuple[str, Path]) -> str:
    """A tour page on the host site that embeds the service's beacon.js."""
    site, folder = host_site
    (folder / "tour.html").write_text(PAGE.format(service=service[0].url, extra=""))
    return f"{site}/tour.html"


def stats(service: tuple[ServerProcess, str]) -> Any:
    server, token = service
    response = httpx.get(
        f"{server.url}/v1/tours/t1/stats", headers={"Authorization": f"Bearer {token}"}
    )
    return response.json()


def settle(service: tuple[ServerProcess, str], views: int, seconds: float = 10) -> Any:
    """The stats once ``views`` are counted (beacons are sent in the background)."""
    deadline = time.monotonic() + seconds
    while True:
        document = stats(service)
        if document["totals"]["views"] >= views or time.monotonic() > deadline:
            return document
        time.sleep(0.1)


def scenes(service: tuple[ServerProcess, str], seconds: float = 10) -> Any:
    """The scene breakdown once a scene is counted (beacons are sent in the background)."""
    deadline = time.monotonic() + seconds
    while not stats(service)["breakdown"]["scene"] and time.monotonic() < deadline:
        time.sleep(0.1)
    return stats(service)["breakdown"]["scene"]


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    context = browser.new_context(user_agent=desktop_agent(browser))
    yield context
    context.close()


def open_page(context: BrowserContext, url: str, errors: list[str]) -> Page:
    page = context.new_page()
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(url)
    page.wait_for_load_state("load")
    return page


def test_view_reload_second_visitor_and_scene_are_counted_right(
    browser: Browser,
    context: BrowserContext,
    service: tuple[ServerProcess, str],
    tour_url: str,
) -> None:
    errors: list[str] = []
    page = open_page(context, tour_url, errors)
    assert settle(service, 1)["totals"]["views"] == 1

    page.reload()
    page.wait_for_load_state("load")
    time.sleep(0.5)  # the reload's beacon is a duplicate: nothing more to wait for
    assert (
        stats(service)["totals"].items()
        >= {"views": 1, "visitors": 1, "visitors_exact": True}.items()
    )
    first = page.evaluate("localStorage.getItem('tourviews.visitor')")
    assert len(first) == 36

    other = browser.new_context(user_agent=desktop_agent(browser))
    open_page(other, tour_url, errors)
    assert (
        settle(service, 2)["totals"].items()
        >= {"views": 2, "visitors": 2, "visitors_exact": True}.items()
    )
    other.close()

    page.evaluate("window.tourviews.scene('lobby')")
    assert scenes(service) == [{"key": "lobby", "views": 1, "visitors": 1, "engaged_seconds": 0}]
    assert errors == []


def test_headless_chromium_is_not_counted(
    browser: Browser, service: tuple[ServerProcess, str], tour_url: str
) -> None:
    headless = browser.new_context()  # its own user-agent says HeadlessChrome
    errors: list[str] = []
    open_page(headless, tour_url, errors)
    time.sleep(1)
    assert stats(service)["totals"]["views"] == 0
    assert errors == []
    headless.close()


def test_do_not_track_is_respected_when_the_page_asks(
    browser: Browser, service: tuple[ServerProcess, str], host_site: tuple[str, Path]
) -> None:
    site, folder = host_site
    extra = 'data-respect-dnt="true"'
    (folder / "dnt.html").write_text(PAGE.format(service=service[0].url, extra=extra))
    (folder / "plain.html").write_text(PAGE.format(service=service[0].url, extra=""))
    context = browser.new_context(
        user_agent=desktop_agent(browser), extra_http_headers={"DNT": "1"}
    )
    context.add_init_script("Object.defineProperty(navigator, 'doNotTrack', {get: () => '1'})")
    errors: list[str] = []
    page = open_page(context, f"{site}/dnt.html", errors)
    page.evaluate("window.tourviews.scene('lobby')")
    time.sleep(1)
    assert stats(service)["totals"]["views"] == 0
    open_page(context, f"{site}/plain.html", errors)  # a page that does not ask: counted
    assert settle(service, 1)["totals"]["views"] == 1
    assert errors == []
    context.close()


def test_script_never_throws_into_the_page_without_storage(
    context: BrowserContext, service: tuple[ServerProcess, str], tour_url: str
) -> None:
    # Storage that throws, as with blocked cookies, and no sendBeacon.
    context.add_init_script(
        "Object.defineProperty(window, 'localStorage', {get() { throw new Error('blocked'); }});"
        "Object.defineProperty(navigator, 'sendBeacon', {value: undefined});"
    )
    errors: list[str] = []
    page = open_page(context, tour_url, errors)
    assert settle(service, 1)["totals"]["views"] == 1
    page.evaluate("window.tourviews.scene('hall')")
    assert errors == []


def test_a_browser_marked_as_automated_counts_nothing(
    browser: Browser,
    marked_browser: Browser,
    service: tuple[ServerProcess, str],
    tour_url: str,
) -> None:
    errors: list[str] = []
    marked = marked_browser.new_context(user_agent=desktop_agent(marked_browser))
    page = open_page(marked, tour_url, errors)
    assert page.evaluate("navigator.webdriver") is True
    page.evaluate("window.tourviews.scene('lobby')")  # the player's calls still work
    time.sleep(1)
    assert stats(service)["totals"]["views"] == 0
    marked.close()
    person = browser.new_context(user_agent=desktop_agent(browser))
    page = open_page(person, tour_url, errors)
    assert page.evaluate("navigator.webdriver") is False
    assert settle(service, 1)["totals"]["views"] == 1  # the same page, unmarked: counted
    person.close()
    assert errors == []


def test_pages_driven_by_phantomjs_nightmare_or_cypress_count_nothing(
    browser: Browser, service: tuple[ServerProcess, str], tour_url: str
) -> None:
    errors: list[str] = []
    for marker in ("_phantom", "callPhantom", "__nightmare", "Cypress"):
        context = browser.new_context(user_agent=desktop_agent(browser))
        context.add_init_script(f"window.{marker} = {{}};")
        page = open_page(context, tour_url, errors)
        page.evaluate("window.tourviews.scene('lobby')")
        context.close()
    time.sleep(1)
    assert stats(service)["totals"]["views"] == 0
    assert stats(service)["breakdown"]["scene"] == []
    assert errors == []


# Headless Chromium does not prerender (speculation rules fetch the page but never run
# it), so these pages are put in that state through the standard property and event.
PRERENDERED = """
(() => {
  let prerendering = true;
  Object.defineProperty(Document.prototype, "prerendering", {get: () => prerendering});
  window.activate = () => {
    prerendering = false;
    document.dispatchEvent(new Event("prerenderingchange"));
  };
})();
"""
HIDDEN = """
(() => {
  let state = "hidden";
  Object.defineProperty(Document.prototype, "visibilityState", {get: () => state});
  window.show = () => {
    state = "visible";
    document.dispatchEvent(new Event("visibilitychange"));
  };
})();
"""


@pytest.mark.parametrize(("state", "reveal"), [(PRERENDERED, "activate()"), (HIDDEN, "show()")])
def test_a_view_counts_only_once_the_page_is_shown(
    context: BrowserContext,
    service: tuple[ServerProcess, str],
    tour_url: str,
    state: str,
    reveal: str,
) -> None:
    context.add_init_script(state)
    errors: list[str] = []
    page = open_page(context, tour_url, errors)
    time.sleep(1)
    assert stats(service)["totals"]["views"] == 0  # loaded, never shown: nothing
    page.evaluate(reveal)
    assert settle(service, 1)["totals"]["views"] == 1
    page.evaluate(reveal)  # shown again (another tab and back): still one view
    time.sleep(0.5)
    assert stats(service)["totals"]["views"] == 1
    assert errors == []


def test_a_stored_visitor_id_that_is_not_random_is_replaced(
    context: BrowserContext, service: tuple[ServerProcess, str], tour_url: str
) -> None:
    # Written by something else on the same origin: the server would refuse it (400).
    context.add_init_script(
        "localStorage.setItem('tourviews.visitor', '6a616e65-4065-7861-6d70-6c652e696f00')"
    )
    errors: list[str] = []
    page = open_page(context, tour_url, errors)
    assert settle(service, 1)["totals"]["views"] == 1
    stored = page.evaluate("localStorage.getItem('tourviews.visitor')")
    assert stored[14] == "4" and stored != "6a616e65-4065-7861-6d70-6c652e696f00"
    assert errors == []


def test_a_visitor_withdraws_consent_from_the_page_and_is_erased(
    data_dir: Path,
    context: BrowserContext,
    service: tuple[ServerProcess, str],
    tour_url: str,
) -> None:
    errors: list[str] = []
    page = open_page(context, tour_url, errors)
    assert settle(service, 1)["totals"]["views"] == 1
    page.evaluate("window.tourviews.scene('lobby')")
    who = page.evaluate("localStorage.getItem('tourviews.visitor')")
    assert scenes(service) == [{"key": "lobby", "views": 1, "visitors": 1, "engaged_seconds": 0}]

    page.evaluate("window.tourviews.forget()")
    deadline = time.monotonic() + 10
    while stats(service)["totals"]["views"] and time.monotonic() < deadline:
        time.sleep(0.1)
    assert (
        stats(service)["totals"].items()
        >= {"views": 0, "visitors": 0, "visitors_exact": True}.items()
    )
    assert stats(service)["breakdown"]["scene"] == []
    assert not page.evaluate("localStorage.getItem('tourviews.visitor')")
    assert page.evaluate("localStorage.getItem('tourviews.optout')") == "1"

    # The browser sends nothing more: not from this page, not from the next.
    page.evaluate("window.tourviews.scene('roof')")
    page.reload()
    page.wait_for_load_state("load")
    time.sleep(1)
    assert stats(service)["totals"]["views"] == 0
    assert not page.evaluate("localStorage.getItem('tourviews.visitor')")
    assert command(data_dir, "compact").startswith("compacted the database")
    server, _ = service
    assert server.terminate() == 0
    assert found(data_dir, [who]) == []
    assert errors == []


def test_a_withdrawal_that_fails_is_sent_again_from_the_next_page(
    context: BrowserContext, service: tuple[ServerProcess, str], tour_url: str
) -> None:
    errors: list[str] = []
    page = open_page(context, tour_url, errors)
    assert settle(service, 1)["totals"]["views"] == 1
    who = page.evaluate("localStorage.getItem('tourviews.visitor')")
    page.route("**/v1/visitor/forget", lambda route: route.abort())  # the network fails
    page.evaluate("window.tourviews.forget()")
    time.sleep(1)
    assert stats(service)["totals"]["views"] == 1
    assert page.evaluate("localStorage.getItem('tourviews.optout')") == who  # kept, to retry
    page.unroute("**/v1/visitor/forget")
    page.reload()
    page.wait_for_load_state("load")
    deadline = time.monotonic() + 10
    while stats(service)["totals"]["views"] and time.monotonic() < deadline:
        time.sleep(0.1)
    assert stats(service)["totals"]["views"] == 0
    deadline = time.monotonic() + 5
    while page.evaluate("localStorage.getItem('tourviews.optout')") != "1":
        assert time.monotonic() < deadline, "the retry's 204 was not recorded"
        time.sleep(0.1)
    assert errors == []
