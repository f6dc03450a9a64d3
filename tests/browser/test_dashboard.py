"""The owners' dashboard in a real Chromium, on a known data set sent through the pipeline.

The data set is sent in-process with a manual clock (so that part of it falls in the
period before), then a real server serves it:

- ``museum-hall`` (Asia/Kolkata; its goals: ``lead-form``, the kitchen), ten minutes
  ago: visitor A views, enters the lobby (30 s), then the kitchen (20 s) and clicks
  ``lead-form``; visitor B views and enters the lobby (5 s). Eight days before: four
  visitors view and enter the lobby.
- ``rooftop`` (Asia/Kolkata): 1,200 views ten minutes ago, 1,000 eight days before,
  and one crawler.
- ``open-house``: nothing until a test sends a view to watch "on the tour now" change.
"""

from __future__ import annotations

import asyncio
import os
import re
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import httpx
import orjson
import pytest
from playwright.sync_api import (
    Browser,
    Locator,
    Page,
    Request,
    Route,
    ViewportSize,
    expect,
)

from tests.conftest import CHROME, ServerProcess, start_server
from tourviews.app import create_app
from tourviews.ingest.http.address import parse_networks
from tourviews.settings import Settings
from tourviews.storage.clock import ManualClock

IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1"
)
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
ZONE = "Asia/Kolkata"
MUSEUM_GOALS = ("action:lead-form", "scene:kitchen")
DASH = "\N{EN DASH}"
DESKTOP: ViewportSize = {"width": 1280, "height": 900}
PHONE: ViewportSize = {"width": 390, "height": 844}


@dataclass(frozen=True)
class Dashboard:
    server: ServerProcess
    owner: str  # organization acme's token
    rooftop: str  # a token for tour rooftop alone
    admin: str

    def url(self, token: str, tour: str | None = "museum-hall") -> str:
        """The dashboard's link, opening on ``tour`` (None: where the page lands by itself)."""
        linked = "" if tour is None else f"&tour={tour}"
        return f"{self.server.url}/dashboard#token={token}{linked}"


class Sender:
    """Beacons through the in-process app, each person from an address of their own."""

    def __init__(self, client: httpx.AsyncClient, clock: ManualClock) -> None:
        self.client = client
        self.clock = clock
        self.people = 0

    async def send(self, who: tuple[str, str, str], event: str = "view", **fields: object) -> None:
        visitor, agent, address = who
        body = {"tour": fields.pop("tour"), "visitor": visitor, "event": event, **fields}
        headers = {"Content-Type": "text/plain", "User-Agent": agent, "X-Forwarded-For": address}
        response = await self.client.post("/v1/beacon", content=orjson.dumps(body), headers=headers)
        assert response.status_code == 204

    def person(self, agent: str = CHROME) -> tuple[str, str, str]:
        self.people += 1
        return str(uuid.uuid4()), agent, f"198.51.{self.people // 250}.{self.people % 250 + 1}"

    async def views(self, tour: str, count: int) -> None:
        """``count`` views of new people, 400 a second (a tour's limit is 500 a second)."""
        for chunk in range(0, count, 400):
            people = [self.person() for _ in range(min(400, count - chunk))]
            await asyncio.gather(*(self.send(who, tour=tour) for who in people))
            self.clock.advance(timedelta(seconds=1))


async def send_known_data(sender: Sender, clock: ManualClock) -> None:
    museum = {"tour": "museum-hall"}
    for _ in range(4):
        someone = sender.person()
        await sender.send(someone, **museum)
        await sender.send(someone, "scene", scene="lobby", **museum)
    await sender.views("rooftop", 1_000)
    clock.advance(timedelta(days=8))
    a, b = sender.person(), sender.person(IPHONE)
    for who in (a, b):
        await sender.send(who, **museum)
        await sender.send(who, "scene", scene="lobby", **museum)
    clock.advance(timedelta(seconds=5))
    await sender.send(b, "engage", seconds=5, scene="lobby", **museum)
    clock.advance(timedelta(seconds=25))
    await sender.send(a, "engage", seconds=30, scene="lobby", **museum)
    await sender.send(a, "scene", scene="kitchen", **museum)
    clock.advance(timedelta(seconds=20))
    await sender.send(a, "engage", seconds=20, scene="kitchen", **museum)
    await sender.send(a, "action", name="lead-form", **museum)
    await sender.views("rooftop", 1_200)
    await sender.send((str(uuid.uuid4()), GOOGLEBOT, "192.0.2.1"), tour="rooftop")


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dashboard]:
    data_dir = tmp_path_factory.mktemp("dashboard") / "data"
    ten_minutes_ago = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10)
    clock = ManualClock(ten_minutes_ago - timedelta(days=8, seconds=50))
    settings = Settings(data_dir=data_dir, trusted_proxies=parse_networks(["127.0.0.1/32"]))
    app = create_app(settings, clock)
    registry = app.service.registry
    registry.put_tour("museum-hall", "acme", timezone=ZONE, goals=MUSEUM_GOALS)
    registry.put_tour("rooftop", "acme", timezone=ZONE)
    registry.put_tour("open-house", "acme")
    tokens = (
        registry.create_token("acme"),
        registry.create_token("acme", tour="rooftop"),
        registry.create_token("ops", admin=True),
    )

    async def send() -> None:
        transport = httpx.ASGITransport(app, client=("127.0.0.1", 40000))
        try:
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
                await send_known_data(Sender(client, clock), clock)
        finally:
            await app.service.stop()

    # On a thread of its own: Playwright's sync API may already run a loop on this one
    with ThreadPoolExecutor(1) as thread:
        thread.submit(asyncio.run, send()).result()
    server = start_server(data_dir, "--trusted-proxy", "127.0.0.1/32")
    yield Dashboard(server, *tokens)
    server.terminate()


class Pages:
    """Pages of one test; at its end they are closed, and none may have thrown an error."""

    def __init__(self, browser: Browser) -> None:
        self.browser = browser
        self.pages: list[Page] = []
        self.errors: list[str] = []

    def new(self, viewport: ViewportSize = DESKTOP) -> Page:
        page = self.browser.new_page(viewport=viewport)
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        self.pages.append(page)
        return page

    def open(self, url: str, viewport: ViewportSize = DESKTOP) -> Page:
        """The dashboard at ``url``, loaded: every figure shown."""
        page = self.new(viewport)
        page.goto(url)
        loaded(page)
        return page


@pytest.fixture
def pages(browser: Browser) -> Iterator[Pages]:
    pages = Pages(browser)
    yield pages
    for page in pages.pages:
        page.close()
    assert pages.errors == []


def loaded(page: Page) -> None:
    expect(page.locator("#content")).to_have_attribute("aria-busy", "false")


def today() -> date:
    return datetime.now(ZoneInfo(ZONE)).date()


def rows(page: Page, table: str) -> list[list[str]]:
    """The cells of a table's rows, its heading row left out."""
    cells = page.locator(f"#{table} tr").evaluate_all(
        "rows => rows.slice(1).map(r => [...r.cells].map(c => c.textContent))"
    )
    return list(cells)


def test_the_figures_are_those_of_the_known_visits(pages: Pages, dashboard: Dashboard) -> None:
    page = pages.open(dashboard.url(dashboard.owner))
    assert "token=" not in page.url  # the token left the address bar
    assert page.locator("#tour").input_value() == "museum-hall"
    shown = {key: page.locator(f"#{key}").inner_text() for key in (
        "views", "visitors", "visits", "engaged_seconds", "engaged_seconds_per_visit",
        "scenes_per_visit", "bounce_rate",
    )}  # fmt: skip
    assert shown == {
        "views": "2", "visitors": "2", "visits": "2", "engaged_seconds": "55 s",
        "engaged_seconds_per_visit": "28 s", "scenes_per_visit": "1.5", "bounce_rate": "50%",
    }  # fmt: skip
    assert rows(page, "breakdown-scene") == [
        ["lobby", "2", "2", "35 s"],
        ["kitchen", "1", "1", "20 s"],
    ]
    assert rows(page, "breakdown-entry_scene") == [["lobby", "2"]]
    assert rows(page, "breakdown-exit_scene") == [["kitchen", "1"], ["lobby", "1"]]
    assert rows(page, "breakdown-transitions") == [["lobby → kitchen", "1"]]
    assert rows(page, "breakdown-action") == [["lead-form", "1", "1"]]
    assert rows(page, "breakdown-device") == [["desktop", "1", "1"], ["mobile", "1", "1"]]
    assert "Days in Asia/Kolkata (GMT+5:30)" in page.locator("#range").inner_text()


def test_the_tables_are_the_breakdowns_the_service_lists(
    pages: Pages, dashboard: Dashboard
) -> None:
    """One more breakdown in the list and the document: drawn last, as the list says."""
    platform = {"name": "platform", "title": "Platforms", "heading": "platform",
                "columns": [{"field": "views", "heading": "views", "kind": "count"}], "top": None}  # fmt: skip

    def answered(change: Callable[[dict[str, Any]], None]) -> Callable[[Route], None]:
        def handle(route: Route) -> None:
            answer = route.fetch()
            body = answer.json()
            change(body)
            route.fulfill(response=answer, json=body)

        return handle

    page = pages.new()
    page.route(
        re.compile(r"/v1/tours$"), answered(lambda body: body["breakdowns"].append(platform))
    )
    page.route(
        "**/stats?*",
        answered(lambda body: body["breakdown"].update(platform=body["breakdown"]["os"])),
    )
    page.goto(dashboard.url(dashboard.owner))
    loaded(page)
    assert page.locator("#breakdowns h2").all_inner_texts() == [
        "Scenes", "Where visits began", "Where visits ended", "Paths between scenes", "Actions",
        "Sources", "Channels", "Campaign sources", "Campaign media", "Campaigns", "Devices",
        "Browsers", "Operating systems", "Platforms",
    ]  # fmt: skip
    systems = rows(page, "breakdown-os")
    assert len(systems) == 2
    assert rows(page, "breakdown-platform") == [[key, views] for key, views, _ in systems]


def test_each_figure_is_compared_with_the_period_before(pages: Pages, dashboard: Dashboard) -> None:
    page = pages.open(dashboard.url(dashboard.owner))
    changes = {key: page.locator(f"#{key}-change") for key in (
        "views", "visits", "engaged_seconds", "scenes_per_visit", "bounce_rate",
    )}  # fmt: skip
    assert {key: change.inner_text() for key, change in changes.items()} == {
        "views": "▼ 50%",  # 2 against 4
        "visits": "▼ 50%",
        "engaged_seconds": "new",  # none before
        "scenes_per_visit": "▲ 50%",  # 1.5 against 1
        "bounce_rate": "▼ 50 pts",  # 50% against 100%: a share moves by points
    }
    expect(changes["views"]).to_have_class("bad")
    expect(changes["bounce_rate"]).to_have_class("good")  # fewer bounces are better
    first, last = today() - timedelta(days=13), today() - timedelta(days=7)
    expected = f"{first.day} {first:%b} {DASH} {last.day} {last:%b %Y}"
    if first.month == last.month:
        expected = f"{first.day} {DASH} {last.day} {last:%b %Y}"
    assert f"Changes are against {expected}." in page.locator("#range").inner_text()


def test_a_row_click_filters_and_the_filter_survives_a_reload_until_its_chip_goes(
    pages: Pages, dashboard: Dashboard
) -> None:
    page = pages.open(dashboard.url(dashboard.owner))
    page.locator("#breakdown-device tr", has_text="mobile").click()
    expect(page.locator("#filters .chip")).to_have_text(["device: mobile \N{MULTIPLICATION SIGN}"])
    expect(page.locator("#views")).to_have_text("1")
    loaded(page)
    assert page.url.endswith("#tour=museum-hall&filter=device%3Amobile")
    assert rows(page, "breakdown-device") == [["mobile", "1", "1"]]
    assert rows(page, "breakdown-action") == [["Nothing in this range"]]  # A sent the form
    # a second filter from another table: the visits both pick
    page.locator("#breakdown-entry_scene tr", has_text="lobby").click()
    expect(page.locator("#filters .chip")).to_have_count(2)
    loaded(page)
    page.reload()
    loaded(page)
    assert page.locator("#tour").input_value() == "museum-hall"  # the link keeps the tour
    expect(page.locator("#filters .chip")).to_have_text(
        ["device: mobile \N{MULTIPLICATION SIGN}", "entry_scene: lobby \N{MULTIPLICATION SIGN}"]
    )
    expect(page.locator("#views")).to_have_text("1")
    page.locator("#filters .chip", has_text="device").click()
    expect(page.locator("#views")).to_have_text("2")
    page.locator("#filters .chip").click()
    expect(page.locator("#filters")).to_be_hidden()
    assert "filter" not in page.url
    # filters are picked from one tour's rows: another tour starts without them
    page.locator("#breakdown-device tr", has_text="mobile").click()
    expect(page.locator("#filters .chip")).to_have_count(1)
    page.select_option("#tour", "rooftop")
    expect(page.locator("#views")).to_have_text("1,200")
    expect(page.locator("#filters")).to_be_hidden()
    assert page.url.endswith("#tour=rooftop")


def test_one_number_format_in_totals_and_tables(pages: Pages, dashboard: Dashboard) -> None:
    page = pages.open(dashboard.url(dashboard.owner))
    page.locator("#tours tr[data-tour=rooftop]").click()
    expect(page.locator("#views")).to_have_text("1,200")
    loaded(page)
    assert page.locator("#views-change").inner_text() == "▲ 20%"  # 1,200 against 1,000
    assert rows(page, "breakdown-device") == [["desktop", "1,200", "1,200"]]
    assert ["rooftop", "1,200", "1,200"] in rows(page, "tours")
    assert axis_labels(page.locator("#chart"), "end") == ["0", "500", "1,000", "1,500"]


def test_presets_change_the_range_and_the_request(pages: Pages, dashboard: Dashboard) -> None:
    page = pages.open(dashboard.url(dashboard.owner))
    asked: list[dict[str, str]] = []

    def note(request: Request) -> None:
        if "/stats?" in request.url:
            asked.append({k: v[0] for k, v in parse_qs(urlsplit(request.url).query).items()})

    page.on("request", note)
    day = today()
    expected = {
        "today": (day, day, "hour"),
        "yesterday": (day - timedelta(days=1), day - timedelta(days=1), "hour"),
        "30d": (day - timedelta(days=29), day, "day"),
        "month": (day.replace(day=1), day, "day" if day.day > 2 else "hour"),
        "7d": (day - timedelta(days=6), day, "day"),
    }
    for preset, (first, last, interval) in expected.items():
        page.click(f"#presets [data-preset='{preset}']")
        expect(page.locator(f"#presets [data-preset='{preset}']")).to_have_attribute(
            "aria-pressed", "true"
        )
        loaded(page)
        assert asked[-1] == {"from": str(first), "to": str(last), "interval": interval}
    page.click("#presets [data-preset=custom]")
    expect(page.locator("#from")).to_be_visible()
    first, last = day - timedelta(days=12), day - timedelta(days=10)
    page.fill("#from", str(first))
    page.fill("#to", str(last))
    expect(page.locator("#views")).to_have_text("0")  # the known visits are later
    assert asked[-1] == {"from": str(first), "to": str(last), "interval": "day"}


def test_the_chart_has_round_ticks_on_both_axes_and_distinct_lines(
    pages: Pages, dashboard: Dashboard
) -> None:
    page = pages.open(dashboard.url(dashboard.owner))
    y_labels, x_labels = (
        axis_labels(page.locator("#chart"), "end"),
        axis_labels(page.locator("#chart"), "middle"),
    )
    assert y_labels == ["0", "1", "2"]  # the most in a day is 2
    assert len(x_labels) == 7 and all(re.fullmatch(r"\d{1,2} [A-Z][a-z]{2}", x) for x in x_labels)
    assert page.locator("#chart .grid-line").count() >= 3 + 7
    dashes = page.locator("#chart path").evaluate_all(
        "paths => paths.map(p => p.getAttribute('stroke-dasharray'))"
    )
    assert set(dashes) == {"none", "6 4"}  # views solid, visitors dashed
    page.click("#presets [data-preset=today]")
    loaded(page)
    hours = [
        t for t in page.locator("#chart text").all_text_contents() if re.fullmatch(r"\d\d:00", t)
    ]
    assert len(hours) >= 3


def axis_labels(chart: Locator, anchor: str) -> list[str]:
    """The labels of a chart's y axis (anchored at their end) or x axis (at their middle)."""
    return list(chart.locator(f"text[text-anchor={anchor}]").all_text_contents())


def test_hovering_the_chart_shows_the_values_of_a_day(pages: Pages, dashboard: Dashboard) -> None:
    page = pages.open(dashboard.url(dashboard.owner))
    tip = page.locator("#chart .tip")
    assert tip.is_hidden()
    highest = page.locator("#chart circle").evaluate_all(
        "cs => cs.map(c => c.getBoundingClientRect()).sort((a, b) => a.top - b.top)[0].toJSON()"
    )
    page.mouse.move(highest["x"] + highest["width"] / 2, highest["y"] + highest["height"] / 2)
    expect(tip).to_be_visible()
    assert tip.inner_text().splitlines()[1:] == ["views 2", "visitors 2"]
    assert re.match(r"[A-Z][a-z]{2} \d{1,2} [A-Z][a-z]{2}", tip.inner_text())  # "Tue 1 Dec"
    page.mouse.move(5, 5)
    expect(tip).to_be_hidden()


def test_nothing_shows_zero_while_loading(pages: Pages, dashboard: Dashboard) -> None:
    page = pages.new()
    held: list[Route] = []
    page.route("**/stats?*", lambda route: held.append(route))
    page.goto(dashboard.url(dashboard.owner))
    expect(page.locator("#content")).to_be_visible()
    page.wait_for_timeout(300)  # time enough for a wrong number to show
    assert page.locator("#content").get_attribute("aria-busy") == "true"
    assert page.locator("#views").inner_text() == ""  # no figure until it is known
    assert "0" not in page.locator("#kpis").inner_text()
    assert "0" not in page.locator("#chart").inner_text()
    assert len(held) == 1
    held[0].continue_()
    expect(page.locator("#views")).to_have_text("2")


def test_on_the_tour_now_is_read_again_every_few_seconds(
    pages: Pages, dashboard: Dashboard
) -> None:
    page = pages.new()
    page.clock.install()
    page.goto(dashboard.url(dashboard.owner))
    page.select_option("#tour", "open-house")
    expect(page.locator("#now")).to_have_text("0")
    expect(page.locator("#live")).to_be_visible()
    with httpx.Client() as client:
        response = client.post(
            f"{dashboard.server.url}/v1/beacon",
            content=orjson.dumps({"tour": "open-house", "visitor": str(uuid.uuid4())}),
            headers={"Content-Type": "text/plain", "User-Agent": CHROME,
                     "X-Forwarded-For": "203.0.113.7"},
        )  # fmt: skip
    assert response.status_code == 204
    page.clock.fast_forward(5_000)
    page.wait_for_timeout(300)
    assert page.locator("#now").inner_text() == "0"  # not yet: every 12 seconds
    page.clock.fast_forward(8_000)
    expect(page.locator("#now")).to_have_text("1")


def test_no_request_leaves_the_service(pages: Pages, dashboard: Dashboard) -> None:
    page = pages.new()
    urls: list[str] = []
    page.on("request", lambda request: urls.append(request.url))
    page.goto(dashboard.url(dashboard.admin))
    loaded(page)
    for preset in ("30d", "today"):
        page.click(f"#presets [data-preset='{preset}']")
        loaded(page)
    assert len(urls) > 5
    assert [url for url in urls if not url.startswith(dashboard.server.url + "/")] == []


@pytest.mark.parametrize("preset", ["7d", "today", "custom"])
def test_the_dashboard_fits_a_phone(pages: Pages, dashboard: Dashboard, preset: str) -> None:
    page = pages.open(dashboard.url(dashboard.admin), PHONE)
    page.click(f"#presets [data-preset='{preset}']")
    loaded(page)
    assert page.evaluate("document.scrollingElement.scrollWidth <= innerWidth")
    heights = page.locator("#presets button").evaluate_all(
        "bs => bs.map(b => b.getBoundingClientRect().height)"
    )
    assert min(heights) >= 44  # tap-friendly
    kpi = page.locator("#kpi-views").bounding_box()
    assert kpi is not None and kpi["width"] < PHONE["width"] / 2  # two figures a row
    tables = page.locator("#breakdowns table").evaluate_all(
        "ts => ts.map(t => t.getBoundingClientRect().right)"
    )
    assert max(tables) <= PHONE["width"]


def test_labels_are_one_size_in_both_charts(pages: Pages, dashboard: Dashboard) -> None:
    page = pages.open(dashboard.url(dashboard.admin))
    expect(page.locator("#abuse")).to_be_visible()
    sizes = page.locator("#chart text, #reasons text").evaluate_all(
        "ts => [...new Set(ts.map(t => t.getBoundingClientRect().height.toFixed(1)))]"
    )
    assert len(sizes) == 1


def test_a_link_made_for_one_tour_shows_that_tour_alone(pages: Pages, dashboard: Dashboard) -> None:
    page = pages.open(dashboard.url(dashboard.rooftop, tour=None))
    expect(page.locator("#views")).to_have_text("1,200")
    assert page.locator("#overview").is_hidden()
    assert page.locator("#tour option").all_inner_texts() == ["rooftop"]
    assert page.locator("#tourList").is_hidden()  # a list of one tour says nothing
    assert page.locator("#abuse").is_hidden()


def test_an_owner_sees_no_abuse_view_and_an_admin_does(pages: Pages, dashboard: Dashboard) -> None:
    page = pages.open(dashboard.url(dashboard.owner))
    assert page.locator("#abuse").is_hidden()
    page = pages.open(dashboard.url(dashboard.admin))
    expect(page.locator("#abuse")).to_be_visible()
    assert "bot 1" in page.locator("#reasonLegend").inner_text()
    assert page.locator("#reasons rect").count() >= 1


def test_an_owner_token_never_asks_for_the_operators_views(
    pages: Pages, dashboard: Dashboard
) -> None:
    page = pages.new()
    asked: list[str] = []
    failed: list[str] = []
    page.on("request", lambda request: asked.append(request.url))
    page.on("response", lambda answer: failed.append(answer.url) if answer.status >= 400 else None)
    page.goto(dashboard.url(dashboard.owner))
    loaded(page)
    page.click("#presets [data-preset='30d']")
    expect(page.locator("#range")).to_contain_text("Changes are against")
    loaded(page)
    page.wait_for_load_state("networkidle")  # a browser asks for an icon after the rest
    assert [url for url in asked if "/v1/admin/" in url] == []
    assert failed == []  # no 403, nor a 404 of any address the page asks for (its icon)


def test_against_a_period_without_visits_shares_of_visits_are_new(
    pages: Pages, dashboard: Dashboard
) -> None:
    page = pages.open(dashboard.url(dashboard.owner))
    page.click("#presets [data-preset='today']")  # yesterday had no visit
    for key in ("visits", "scenes_per_visit", "bounce_rate"):
        expect(page.locator(f"#{key}-change")).to_have_text("new")


def test_the_token_form_fits_a_phone_and_shows_no_controls_yet(
    pages: Pages, dashboard: Dashboard
) -> None:
    page = pages.new(PHONE)
    page.goto(f"{dashboard.server.url}/dashboard")
    page.wait_for_selector("#login:not([hidden])")
    assert page.evaluate("document.scrollingElement.scrollWidth <= innerWidth")
    for control in ("#tour", "#csv", "#signout"):
        assert page.locator(control).is_hidden(), control
    page.fill("#token", dashboard.owner)
    page.click("#login button")
    loaded(page)
    for control in ("#tour", "#signout", "#overview"):  # several tours: the overview
        assert page.locator(control).is_visible(), control
    page.select_option("#tour", "museum-hall")
    expect(page.locator("#csv")).to_be_visible()


def test_dashboard_asks_for_a_token_and_refuses_a_bad_one(
    pages: Pages, dashboard: Dashboard
) -> None:
    page = pages.new()
    page.goto(f"{dashboard.server.url}/dashboard")
    page.wait_for_selector("#login:not([hidden])")
    page.fill("#token", "tv_not-a-real-token")
    page.click("#login button")
    expect(page.locator("#problem")).to_have_text("That token is not valid here.")
    assert page.locator("#content").is_hidden()


# The organization's overview: where a token of several tours lands

SCREENSHOTS = os.environ.get("TOURVIEWS_SCREENSHOTS")  # a directory: make screenshot


def overview_rows(page: Page) -> list[list[str]]:
    """Each tour's row of the overview: its name, then each figure and its change."""
    cells = page.locator("#overviewTable tr").evaluate_all(
        "rows => rows.slice(1).map(r => [...r.cells].map(c => [...c.childNodes]"
        ".map(n => n.textContent).filter(t => t).join(' | ')))"
    )
    return list(cells)


ROOFTOP = ["rooftop", "1,200 | ▲ 20%", "1,200 | ▲ 20%", "0 s | no change", DASH]
# A of two visits reached the form; none of the four eight days before did
MUSEUM = ["museum-hall", "2 | ▼ 50%", "2 | ▼ 50%", "55 s | new", "50% | ▲ 50 pts"]


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_a_token_of_several_tours_lands_on_the_overview_of_them_all(
    pages: Pages, dashboard: Dashboard, viewport: ViewportSize, tmp_path: Path
) -> None:
    page = pages.open(dashboard.url(dashboard.owner, tour=None), viewport)
    expect(page.locator("#overview")).to_be_visible()
    assert page.locator("#tour").input_value() == ""
    assert page.locator("#tour option").first.inner_text() == "All tours"
    for hidden in ("#kpis", "#chartCard", "#breakdowns", "#csv", "#tourList", "#abuse"):
        assert page.locator(hidden).is_hidden(), hidden
    # the most viewed first; the days are UTC days, the tours being in two zones
    found = overview_rows(page)
    assert found[:2] == [ROOFTOP, MUSEUM]
    assert found[2][0] == "open-house"  # another test may send it a view: not counted on here
    assert "Days in UTC." in page.locator("#range").inner_text()
    spark = page.locator("#overviewTable tr[data-tour=rooftop] svg.spark")
    label = spark.get_attribute("aria-label") or ""
    assert label.startswith("views per day: ") and label.count(",") >= 6  # seven days
    assert sum(int(v.replace(",", "")) for v in label[15:].split(", ")) == 1_200
    assert page.evaluate("document.scrollingElement.scrollWidth <= innerWidth")
    assert page.locator("#overview .scroll").evaluate("box => box.scrollWidth <= box.clientWidth")
    name = "desktop" if viewport == DESKTOP else "phone"
    folder = Path(SCREENSHOTS) if SCREENSHOTS else tmp_path
    page.screenshot(path=folder / f"dashboard-overview-{name}.png", full_page=True)


def test_the_overview_sorts_by_any_column_and_back(pages: Pages, dashboard: Dashboard) -> None:
    page = pages.open(dashboard.url(dashboard.owner, tour=None))
    heading = page.locator("#overviewTable th")

    def order() -> list[str]:
        return [row[0] for row in overview_rows(page)]

    page.click("#overviewTable th button:text-is('Views')")  # again: the fewest first
    assert order() == ["open-house", "museum-hall", "rooftop"]
    expect(heading.nth(1)).to_have_attribute("aria-sort", "ascending")
    page.click("#overviewTable th button:text-is('Engaged')")  # a new column: the most first
    assert order() == ["museum-hall", "open-house", "rooftop"]  # a tie goes by name
    expect(heading.nth(3)).to_have_attribute("aria-sort", "descending")
    page.click("#overviewTable th button:text-is('Tour')")  # names: from A
    assert order() == ["museum-hall", "open-house", "rooftop"]
    page.click("#overviewTable th button:text-is('Tour')")
    assert order() == ["rooftop", "open-house", "museum-hall"]
    assert heading.nth(1).get_attribute("aria-sort") is None


def test_clicking_a_tour_of_the_overview_opens_it_and_all_tours_comes_back(
    pages: Pages, dashboard: Dashboard
) -> None:
    page = pages.open(dashboard.url(dashboard.owner, tour=None), PHONE)
    page.locator("#overviewTable tr[data-tour=museum-hall]").click()
    expect(page.locator("#views")).to_have_text("2")
    loaded(page)
    assert page.locator("#tour").input_value() == "museum-hall"
    assert page.locator("#overview").is_hidden()
    assert page.locator("#engaged_seconds").inner_text() == "55 s"
    page.select_option("#tour", "")
    expect(page.locator("#overview")).to_be_visible()
    loaded(page)
    assert overview_rows(page)[0] == ROOFTOP


def test_the_overview_sorts_by_the_first_goals_conversion(
    pages: Pages, dashboard: Dashboard
) -> None:
    page = pages.open(dashboard.url(dashboard.owner, tour=None))
    rows = {row[0]: row for row in overview_rows(page)}
    assert rows["museum-hall"][4] == "50% | ▲ 50 pts"  # a share moves by points
    assert rows["rooftop"][4] == DASH  # no goals: nothing to claim
    page.click("#overviewTable th button:text-is('Conversion')")
    assert overview_rows(page)[0][0] == "museum-hall"


def test_a_share_moves_by_one_point_or_by_points(pages: Pages, dashboard: Dashboard) -> None:
    page = pages.open(dashboard.url(dashboard.owner))
    assert page.evaluate("change('share', 0.51, 0.5, false)") == ["▲ 1 pt", "good"]
    assert page.evaluate("change('share', 0.5, 0.52, true)") == ["▼ 2 pts", "good"]
