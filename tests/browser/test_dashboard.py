"""The owners' dashboard in a real Chromium: the tour, a chart, the right totals."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import orjson
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.conftest import CHROME, ServerProcess, StartServer, visitor

IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1"
)
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"


def command(data_dir: Path, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "tourviews", *args, "--data", str(data_dir)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return result.stdout.strip()


@pytest.fixture
def server(data_dir: Path, start: StartServer) -> ServerProcess:
    for tour in ("museum-hall", "rooftop"):
        command(data_dir, "tours", "add", tour, "--org", "acme")
    server = start(data_dir, "--trusted-proxy", "127.0.0.1/32")
    people = [(visitor(), CHROME if n % 3 else IPHONE, f"198.51.100.{n}") for n in range(12)]
    with httpx.Client() as client:
        for who, agent, address in people:
            for event, scene in (("view", None), ("scene", "lobby"), ("scene", "terrace")):
                body = {"tour": "museum-hall", "visitor": who, "event": event}
                send(client, server, body | ({"scene": scene} if scene else {}), agent, address)
        send(client, server, {"tour": "rooftop", "visitor": visitor()}, CHROME, "198.51.100.99")
        send(client, server, {"tour": "rooftop", "visitor": visitor()}, GOOGLEBOT, "192.0.2.1")
    return server


def send(
    client: httpx.Client, server: ServerProcess, body: dict[str, str], agent: str, address: str
) -> None:
    headers = {"Content-Type": "text/plain", "User-Agent": agent, "X-Forwarded-For": address}
    response = client.post(f"{server.url}/v1/beacon", content=orjson.dumps(body), headers=headers)
    assert response.status_code == 204


def open_dashboard(browser: Browser, url: str, width: int = 1280) -> tuple[Page, list[str]]:
    page = browser.new_page(viewport={"width": width, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(url)
    return page, errors


def test_dashboard_shows_the_tours_a_chart_and_the_right_totals(
    browser: Browser, server: ServerProcess, data_dir: Path
) -> None:
    token = command(data_dir, "tokens", "create", "--org", "acme")
    page, errors = open_dashboard(browser, f"{server.url}/dashboard#token={token}")
    page.wait_for_selector("#content:not([hidden])")
    expect(page.locator("#views")).to_have_text("12")
    assert "token=" not in page.url  # the token left the address bar
    assert page.locator("#tours").inner_text().count("museum-hall") == 1
    assert page.locator("#views").inner_text() == "12"
    assert page.locator("#visitors").inner_text() == "12"
    assert page.locator("#chart polyline").count() == 2
    assert "lobby" in page.locator("#breakdowns").inner_text()
    assert page.locator("#abuse").is_hidden()  # an owner's token: no abuse view
    page.locator("#tours tr[data-tour=rooftop]").click()
    expect(page.locator("#views")).to_have_text("1")
    assert errors == []
    page.close()


def test_a_link_made_for_one_tour_shows_that_tour_alone(
    browser: Browser, server: ServerProcess, data_dir: Path
) -> None:
    token = command(data_dir, "tokens", "create", "--org", "acme", "--tour", "rooftop")
    page, errors = open_dashboard(browser, f"{server.url}/dashboard#token={token}")
    page.wait_for_selector("#content:not([hidden])")
    expect(page.locator("#views")).to_have_text("1")
    assert "museum-hall" not in page.locator("#tours").inner_text()
    assert page.locator("#tour option").all_inner_texts() == ["rooftop"]
    assert page.locator("#abuse").is_hidden()
    assert errors == []
    page.close()


def test_dashboard_with_an_admin_token_shows_the_abuse_view(
    browser: Browser, server: ServerProcess, data_dir: Path
) -> None:
    token = command(data_dir, "tokens", "create", "--org", "ops", "--admin")
    page, errors = open_dashboard(browser, f"{server.url}/dashboard#token={token}")
    page.wait_for_selector("#abuse:not([hidden])")
    assert "bot 1" in page.locator("#reasonLegend").inner_text()
    assert page.locator("#reasons rect").count() >= 1
    assert errors == []
    page.close()


def test_dashboard_asks_for_a_token_and_refuses_a_bad_one(
    browser: Browser, server: ServerProcess
) -> None:
    page, errors = open_dashboard(browser, f"{server.url}/dashboard")
    page.wait_for_selector("#login:not([hidden])")
    page.fill("#token", "tv_not-a-real-token")
    page.click("#login button")
    expect(page.locator("#problem")).to_have_text("That token is not valid here.")
    assert page.locator("#content").is_hidden()
    assert errors == []
    page.close()


def test_dashboard_fits_a_phone(browser: Browser, server: ServerProcess, data_dir: Path) -> None:
    token = command(data_dir, "tokens", "create", "--org", "acme")
    page, errors = open_dashboard(browser, f"{server.url}/dashboard#token={token}", width=390)
    page.wait_for_selector("#content:not([hidden])")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    assert errors == []
    page.close()
