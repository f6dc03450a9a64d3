"""The dashboard's goals and funnel builder in a real Chromium, at desktop and phone width.

The known data set of ``test_dashboard`` (``museum-hall``: visitor A views, enters the
lobby, then the kitchen, then sends ``lead-form``; visitor B views and enters the lobby;
eight days before, four visitors enter the lobby), served anew for this module, with
the goals ``action:lead-form`` and ``scene:kitchen`` set on ``museum-hall`` through
the server; ``rooftop`` has none.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.browser.test_dashboard import PHONE, Dashboard, Pages, dashboard, pages, rows

__all__ = ["dashboard", "pages"]  # the fixtures: the dashboard's known data set, its pages

GOALS = ["action:lead-form", "scene:kitchen"]


@pytest.fixture(scope="module", autouse=True)
def goals(dashboard: Dashboard) -> None:
    """The goals of museum-hall, set through the running server as an operator would."""
    answer = httpx.put(
        f"{dashboard.server.url}/v1/admin/tours/museum-hall",
        json={"org": "acme", "goals": GOALS},
        headers={"Authorization": f"Bearer {dashboard.admin}"},
    )
    assert answer.json()["goals"] == GOALS


def funnel_loaded(page: Page) -> None:
    expect(page.locator("#funnelCard")).to_have_attribute("aria-busy", "false")


def test_each_goal_shows_its_conversion_and_change(pages: Pages, dashboard: Dashboard) -> None:
    page = pages.open(dashboard.url(dashboard.owner))
    assert page.locator("#tour").input_value() == "museum-hall"
    # two visits this week, A's reached both goals; four visits the week before, none did
    assert rows(page, "goals") == [
        ["action · lead-form", "1", "50%", "▲ 50 pts"],
        ["scene · kitchen", "1", "50%", "▲ 50 pts"],
    ]
    expect(page.locator("#goalsNote")).to_be_hidden()


def test_the_funnel_counts_steps_in_order_as_they_are_picked(
    pages: Pages, dashboard: Dashboard, tmp_path: Path
) -> None:
    page = pages.open(dashboard.url(dashboard.owner))
    funnel_loaded(page)
    # through the goals at first: A sent the form after the kitchen, so not in this order
    assert rows(page, "funnel") == [
        ["1. visit begins", "2", "100%", ""],
        ["2. action · lead-form", "1", "50%", "▼ 50%"],
        ["3. scene · kitchen", "0", "0%", "▼ 100%"],
    ]
    with page.expect_request("**/funnel?*") as asked:
        page.select_option("select[aria-label='Step 2']", "scene:kitchen")
    funnel_loaded(page)
    assert "step=view&step=scene%3Akitchen&step=scene%3Akitchen" in asked.value.url
    with page.expect_request("**/funnel?*"):
        page.select_option("select[aria-label='Step 3']", "action:lead-form")
    funnel_loaded(page)
    assert [row[1:] for row in rows(page, "funnel")] == [
        ["2", "100%", ""], ["1", "50%", "▼ 50%"], ["1", "50%", "none"]
    ]  # fmt: skip
    # a fourth step: the lobby, which A entered before the form, not after it
    with page.expect_request("**/funnel?*"):
        page.click("#addStep")
    funnel_loaded(page)
    assert rows(page, "funnel")[3] == ["4. scene · lobby", "0", "0%", "▼ 100%"]
    page.screenshot(path=tmp_path / "funnel-desktop.png", full_page=True)
    with page.expect_request("**/funnel?*"):
        page.click("button[aria-label='Remove step 1']")
    funnel_loaded(page)
    assert [row[0] for row in rows(page, "funnel")] == [
        "1. scene · kitchen", "2. action · lead-form", "3. scene · lobby"
    ]  # fmt: skip
    # the view is offered first alone: the service takes it nowhere else
    options = page.locator("select[aria-label='Step 2'] option").evaluate_all(
        "os => os.map(o => o.value)"
    )
    assert "view" not in options and "scene:lobby" in options


def test_a_tour_without_goals_says_how_to_set_them(pages: Pages, dashboard: Dashboard) -> None:
    page = pages.open(dashboard.url(dashboard.rooftop))
    funnel_loaded(page)
    expect(page.locator("#goalsNote")).to_be_visible()
    expect(page.locator("#goals")).to_be_hidden()
    assert rows(page, "funnel") == [["1. visit begins", "1,200", "100%", ""]]
    expect(page.locator("#addStep")).to_be_disabled()  # no scene, no action to add


def test_goals_and_the_funnel_fit_a_phone(
    pages: Pages, dashboard: Dashboard, tmp_path: Path
) -> None:
    page = pages.open(dashboard.url(dashboard.owner), PHONE)
    funnel_loaded(page)
    page.click("#addStep")
    funnel_loaded(page)
    assert page.evaluate("document.scrollingElement.scrollWidth <= innerWidth")
    for part in ("#goalsCard", "#funnelCard", "#goals", "#funnel", "#steps select"):
        boxes = page.locator(part).evaluate_all(
            "es => es.map(e => e.getBoundingClientRect().right)"
        )
        assert boxes and max(boxes) <= PHONE["width"], part
    heights = page.locator("#steps select, #steps button, #addStep").evaluate_all(
        "es => es.map(e => e.getBoundingClientRect().height)"
    )
    assert min(heights) >= 35
    page.locator("#conversion").screenshot(path=tmp_path / "goals-phone.png")
