"""Where a viewer came from, as beacon.js tells it: in a real Chromium, on real origins.

The tour page is on one loopback origin (127.0.0.1), the service on another, and the
page that links to the tour or embeds it in an iframe on a third, named ``localhost``:
three origins, two hosts. What the browser sends is read from Playwright's request
events, the requests Chromium really made; what is counted, from a real ``tourviews
serve``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import quote

import orjson
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Request

from tests.browser.conftest import desktop_agent
from tests.browser.test_beacon_js import PAGE, stats
from tests.conftest import ServerProcess

# A listing on a property portal, with the tour in an iframe. It sends no referrer, so
# the embedding host can come from location.ancestorOrigins alone.
LISTING = """<!doctype html><html><head><title>Flat, 3 rooms</title>
<meta name="referrer" content="no-referrer"></head>
<body><h1>Flat, 3 rooms</h1><iframe src="{tour}" width="640" height="480"></iframe></body></html>"""
# An article linking to the tour that gives away its whole address as the referrer.
ARTICLE = """<!doctype html><html><head><title>News</title>
<meta name="referrer" content="unsafe-url"></head>
<body><a id="tour" href="{tour}">See the tour</a></body></html>"""
# 107 characters, the 58th to the 100th outside the BMP (two UTF-16 units each): a cut
# at 100 units would split one and the server would refuse the view as invalid JSON.
CAMPAIGN = "spring-" + "é" * 50 + "🏠" * 50
SOURCE_FIELDS = ("referrer", "embedded", "utm_source", "utm_medium", "utm_campaign")


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    context = browser.new_context(user_agent=desktop_agent(browser))
    yield context
    context.close()


class Pages(NamedTuple):
    """Where a viewer opens the tour from."""

    listing: str  # the portal's listing, with the tour in an iframe
    article: str  # the portal's article, with a link to the tour (#tour)
    campaign: str  # the tour itself, with the tags of a newsletter's link


@pytest.fixture
def pages(
    service: tuple[ServerProcess, str],
    host_site: tuple[str, Path],
    embedding_site: tuple[str, Path],
) -> Pages:
    site, folder = host_site
    (folder / "tour.html").write_text(PAGE.format(service=service[0].url, extra=""))
    tour = f"{site}/tour.html"
    portal, portal_folder = embedding_site
    for page, template in (("listing/42.html", LISTING), ("news/article.html", ARTICLE)):
        (portal_folder / page).parent.mkdir()
        (portal_folder / page).write_text(template.format(tour=tour))
    # A line break in the source, which the server would refuse, and a campaign too long.
    tags = f"utm_source=news%0Aletter&utm_medium=email&utm_campaign={quote(CAMPAIGN)}&utm_term=x"
    return Pages(
        f"{portal}/listing/42.html?agent=7", f"{portal}/news/article.html?id=7", f"{tour}?{tags}"
    )


class Beacons:
    """The beacons the browser sent to the service, as Chromium sent them."""

    def __init__(self, context: BrowserContext, service: str) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.agents: set[str] = set()
        self.endpoint = f"{service}/v1/beacon"
        context.on("request", self._seen)

    def _seen(self, request: Request) -> None:
        if request.url == self.endpoint and request.method == "POST":
            self.bodies.append(orjson.loads(request.post_data_buffer or b""))
            self.agents.add(request.headers["user-agent"])

    def wait(self, page: Page, event: str, seconds: float = 10) -> dict[str, Any]:
        """The first beacon of ``event``; Playwright reports requests while it waits."""
        deadline = time.monotonic() + seconds
        while not any(body["event"] == event for body in self.bodies):
            assert time.monotonic() < deadline, f"no {event} beacon in {self.bodies}"
            page.wait_for_timeout(100)
        return next(body for body in self.bodies if body["event"] == event)


def watch(context: BrowserContext, service: tuple[ServerProcess, str]) -> Beacons:
    return Beacons(context, service[0].url)


def open_until_viewed(
    context: BrowserContext, sent: Beacons, url: str, link: str | None = None
) -> Page:
    """A new page at ``url`` (then its ``link`` followed), once the tour has sent its view."""
    page = context.new_page()
    page.goto(url)
    if link:
        page.click(link)
    sent.wait(page, "view")
    return page


def test_in_an_iframe_on_another_origin_the_view_carries_the_embedding_host(
    context: BrowserContext, service: tuple[ServerProcess, str], pages: Pages
) -> None:
    sent = watch(context, service)
    page = open_until_viewed(context, sent, pages.listing)
    frame = page.frames[1]
    assert frame.url.startswith("http://127.0.0.1:")  # the tour, in the iframe
    assert frame.evaluate("document.referrer") == ""  # the listing sends none
    view = sent.wait(page, "view")
    assert view["referrer"] == "localhost"
    assert view["embedded"] is True
    assert not any(key.startswith("utm_") for key in view)
    assert all("Headless" not in agent for agent in sent.agents)


def test_at_top_level_the_view_carries_the_referrers_host_and_no_path_or_query(
    context: BrowserContext, service: tuple[ServerProcess, str], pages: Pages
) -> None:
    sent = watch(context, service)
    page = open_until_viewed(context, sent, pages.article, link="#tour")
    assert page.evaluate("document.referrer").endswith("/news/article.html?id=7")
    view = sent.wait(page, "view")
    assert view["referrer"] == "localhost"
    assert view["embedded"] is False
    page.evaluate("window.tourviews.scene('lobby')")
    sent.wait(page, "scene")
    sent_bytes = orjson.dumps(sent.bodies)
    assert b"news" not in sent_bytes and b"article" not in sent_bytes and b"id=7" not in sent_bytes


def test_utm_parameters_in_the_page_url_are_sent_cut_to_what_the_server_takes(
    context: BrowserContext, service: tuple[ServerProcess, str], pages: Pages
) -> None:
    sent = watch(context, service)
    page = open_until_viewed(context, sent, pages.campaign)
    view = sent.wait(page, "view")
    expected = {
        "embedded": False,  # opened directly: no referrer
        "utm_source": "newsletter",
        "utm_medium": "email",
        "utm_campaign": CAMPAIGN[:100],
    }
    assert {key: view[key] for key in SOURCE_FIELDS if key in view} == expected
    assert "utm_term" not in view


def test_only_the_view_carries_where_the_viewer_came_from(
    context: BrowserContext, service: tuple[ServerProcess, str], pages: Pages
) -> None:
    sent = watch(context, service)
    page = open_until_viewed(context, sent, pages.listing)
    page.frames[1].evaluate("window.tourviews.scene('lobby')")
    scene = sent.wait(page, "scene")
    assert scene["scene"] == "lobby"
    assert not any(key in scene for key in SOURCE_FIELDS)
    assert "referrer" in sent.wait(page, "view")


# End to end: what a real server counts of what the browser sent.


def counted(service: tuple[ServerProcess, str], views: int) -> Any:
    """The stats once ``views`` are counted (beacons are committed in the background)."""
    deadline = time.monotonic() + 10
    while stats(service)["totals"]["views"] < views and time.monotonic() < deadline:
        time.sleep(0.1)
    return stats(service)


def views_by(document: Any, breakdown: str) -> dict[str, int]:
    return {row["key"]: row["views"] for row in document["breakdown"][breakdown]}


def test_an_embedded_tour_counts_the_embedding_host_as_source_and_embed_as_channel(
    browser: Browser, data_dir: Path, service: tuple[ServerProcess, str], pages: Pages
) -> None:
    for url, link in ((pages.listing, None), (pages.article, "#tour")):  # a visitor each
        context = browser.new_context(user_agent=desktop_agent(browser))
        open_until_viewed(context, watch(context, service), url, link)
        context.close()
    document = counted(service, 2)
    assert document["totals"]["views"] == 2
    assert views_by(document, "source") == {"localhost": 2}
    assert views_by(document, "channel") == {"embed": 1, "referral": 1}
    server, _ = service
    assert server.terminate() == 0
    for path in [*data_dir.rglob("*"), server.log]:  # the pages' paths and queries: nowhere
        if path.is_file():
            content = path.read_bytes()
            assert all(
                part not in content for part in (b"/listing/", b"/news/", b"id=7", b"agent=7")
            )


def test_a_campaign_in_the_tour_pages_url_is_counted(
    context: BrowserContext, service: tuple[ServerProcess, str], pages: Pages
) -> None:
    open_until_viewed(context, watch(context, service), pages.campaign)
    document = counted(service, 1)
    assert document["totals"]["views"] == 1
    assert views_by(document, "utm_campaign") == {CAMPAIGN[:100]: 1}
    assert views_by(document, "utm_source") == {"newsletter": 1}
    assert views_by(document, "utm_medium") == {"email": 1}
    assert views_by(document, "channel") == {"campaign": 1}
    assert views_by(document, "source") == {"(direct)": 1}
