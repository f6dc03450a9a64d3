"""The breakdown registry: an entry added at run time is counted on every path of the stats
document (raw events, recency rows, rollups, other time zones) and listed for the dashboard."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

import pytest
from starlette.testclient import TestClient

from tests.conftest import view, visitor
from tourviews.analytics import breakdowns
from tourviews.analytics.breakdowns import COUNTS, VISITS, Breakdown
from tourviews.analytics.rollup import roll_up_completed
from tourviews.app import TourviewsApp
from tourviews.storage.clock import ManualClock

IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1"
)
# Keyed on columns the events have: the OS under another name, and the hour of the view.
PLATFORM = Breakdown("platform", "Platforms", "platform", COUNTS, "view", "os")
HOUR = Breakdown("hour_of_day", "Hours of the day", "hour", COUNTS, "view", "strftime(ts, '%H')")
# A column a view may leave empty: such views count under ''.
LANDING = Breakdown("landing", "Landing scenes", "scene", COUNTS, "view", "scene")
# Periods from today (2026-11-24) back: raw events alone, recency rows and raw events,
# rollups beyond raw retention (30 days) and raw events; in UTC and in another zone.
PERIODS = {
    "today": {"from": "2026-11-24", "to": "2026-11-24"},
    "week": {"from": "2026-11-18", "to": "2026-11-24"},
    "past retention": {"from": "2026-10-16", "to": "2026-11-24"},
    "purged days": {"from": "2026-10-16", "to": "2026-10-20"},
    "week in Kolkata": {"from": "2026-11-18", "to": "2026-11-24", "tz": "Asia/Kolkata"},
    "past retention in Kolkata": {"from": "2026-10-16", "to": "2026-11-24", "tz": "Asia/Kolkata"},
}

Stats = Callable[[dict[str, str]], dict[str, Any]]


def add(monkeypatch: pytest.MonkeyPatch, *entries: Breakdown) -> None:
    monkeypatch.setattr(breakdowns, "BREAKDOWNS", (*breakdowns.BREAKDOWNS, *entries))


def traffic(client: TestClient, clock: ManualClock, admin_token: str) -> Stats:
    """40 days, each: a regular on a desktop at noon, a newcomer on an iPhone two hours
    later with a scene; then the raw events of the first 9 days are purged."""
    regular = visitor()
    clock.advance(timedelta(days=-39))
    for _ in range(40):
        view(client, regular)
        clock.advance(timedelta(hours=2))
        newcomer = visitor()
        view(client, newcomer, IPHONE)
        view(client, newcomer, IPHONE, event="scene", scene="lobby")
        clock.advance(timedelta(days=1, hours=-2))
    clock.advance(timedelta(days=-1))
    auth = {"Authorization": f"Bearer {admin_token}"}
    assert client.post("/v1/admin/purge", headers=auth).json()["deleted"] == 9 * 3

    def stats(params: dict[str, str]) -> dict[str, Any]:
        response = client.get("/v1/tours/t1/stats", params=params, headers=auth)
        assert response.status_code == 200, response.text
        document: dict[str, Any] = response.json()
        return document

    return stats


@pytest.mark.parametrize("period", PERIODS)
def test_a_breakdown_added_to_the_registry_is_in_the_stats_document(
    monkeypatch: pytest.MonkeyPatch,
    client: TestClient,
    clock: ManualClock,
    admin_token: str,
    period: str,
) -> None:
    add(monkeypatch, PLATFORM, HOUR, LANDING)
    document = traffic(client, clock, admin_token)(PERIODS[period])
    breakdown = document["breakdown"]
    assert list(breakdown)[-3:] == ["platform", "hour_of_day", "landing"]  # the registry's order
    assert breakdown["platform"] == breakdown["os"] != []
    views = document["totals"]["views"]
    hours = {row["key"]: row["views"] for row in breakdown["hour_of_day"]}
    assert hours == {"12": views // 2, "14": views // 2}
    assert [(row["key"], row["views"]) for row in breakdown["landing"]] == [("", views)]


def test_a_breakdown_not_kept_daily_is_counted_while_raw_events_are(
    monkeypatch: pytest.MonkeyPatch,
    app: TourviewsApp,
    client: TestClient,
    clock: ManualClock,
    admin_token: str,
) -> None:
    add(monkeypatch, Breakdown("platform", "Platforms", "platform", COUNTS, "view", "os",
                               daily=False))  # fmt: skip
    stats = traffic(client, clock, admin_token)
    week = stats(PERIODS["week"])["breakdown"]
    assert week["platform"] == week["os"] != []
    assert stats(PERIODS["purged days"])["breakdown"]["platform"] == []
    kept = app.service.db.cursor().execute(
        "SELECT count(*) FROM rollups WHERE dimension = 'platform'"
    )
    assert kept.fetchall() == [(0,)]


def test_a_breakdown_added_later_is_made_for_the_days_whose_raw_events_are_kept(
    monkeypatch: pytest.MonkeyPatch,
    app: TourviewsApp,
    client: TestClient,
    clock: ManualClock,
    admin_token: str,
) -> None:
    stats = traffic(client, clock, admin_token)  # rolled up, and purged, without it
    add(monkeypatch, PLATFORM)
    cursor = app.service.db.cursor()
    today = clock.now().date()
    kept = [date(2026, 10, 25) + timedelta(days=n) for n in range(30)]
    assert roll_up_completed(cursor, today) == kept
    assert roll_up_completed(cursor, today) == []
    week = stats(PERIODS["week"])["breakdown"]
    assert week["platform"] == week["os"] != []
    assert stats(PERIODS["purged days"])["breakdown"]["platform"] == []


def test_the_dashboard_is_told_each_breakdown_in_order(
    monkeypatch: pytest.MonkeyPatch, client: TestClient, admin_token: str
) -> None:
    add(monkeypatch, PLATFORM)
    listed = client.get("/v1/tours", headers={"Authorization": f"Bearer {admin_token}"}).json()
    assert [b["name"] for b in listed["breakdowns"]] == [
        "scene", "entry_scene", "exit_scene", "transitions", "action", "source", "channel",
        "utm_source", "utm_medium", "utm_campaign", "device", "browser", "os", "platform",
    ]  # fmt: skip
    assert listed["breakdowns"][0] == {
        "name": "scene",
        "title": "Scenes",
        "heading": "scene",
        "columns": [
            {"field": "views", "heading": "views", "kind": "count"},
            {"field": "visitors", "heading": "visitors", "kind": "count"},
            {"field": "engaged_seconds", "heading": "engaged", "kind": "seconds"},
        ],
        "top": None,
        "filter": True,
    }
    assert listed["breakdowns"][-1]["title"] == "Platforms"


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        (lambda: Breakdown("Pages", "Pages", "page", COUNTS, "view", "scene"), "'Pages'"),
        (lambda: Breakdown("hour", "Hours", "hour", COUNTS, "view", "ts"), "'hour'"),
        (lambda: Breakdown("pages", "Pages", "page", COUNTS, "view"), "a key"),
        (lambda: Breakdown("paths", "Paths", "path", VISITS, "visit", "scene"), "none for"),
        (lambda: Breakdown("paths", "Paths", "path", VISITS, "visit", daily=False), "kept daily"),
        (lambda: Breakdown("pages", "Pages", "page", (), "view", "scene"), "no column"),
    ],
)
def test_a_wrong_entry_is_refused_with_its_name(
    entry: Callable[[], Breakdown], problem: str
) -> None:
    with pytest.raises(ValueError, match=problem):
        entry()


def test_a_name_registered_twice_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    add(monkeypatch, Breakdown("os", "Systems", "OS", COUNTS, "view", "os"))
    with pytest.raises(ValueError, match="registered twice: os"):
        breakdowns.registered()


@pytest.mark.parametrize("period", ["week", "purged days", "past retention in Kolkata"])
def test_sources_channels_and_campaigns_are_counted_past_raw_retention(
    client: TestClient, clock: ManualClock, admin_token: str, period: str
) -> None:
    clock.advance(timedelta(days=-39))
    for _ in range(40):  # a day: one from a search engine, one from a campaign, one direct
        view(client, visitor(), referrer="https://www.yandex.kz/search/?text=tour")
        view(client, visitor(), utm_source="vk", utm_campaign="spring")
        view(client, visitor())
        clock.advance(timedelta(days=1))
    clock.advance(timedelta(days=-1))
    auth = {"Authorization": f"Bearer {admin_token}"}
    assert client.post("/v1/admin/purge", headers=auth).json()["deleted"] == 9 * 3
    answer = client.get("/v1/tours/t1/stats", params=PERIODS[period], headers=auth).json()
    third = answer["totals"]["views"] // 3
    assert third > 0

    def counted(name: str) -> dict[str, int]:
        return {row["key"]: row["views"] for row in answer["breakdown"][name]}

    assert counted("source") == {"(direct)": 2 * third, "yandex.kz": third}
    assert counted("channel") == {"direct": third, "search": third, "campaign": third}
    assert counted("utm_source") == {"(none)": 2 * third, "vk": third}
    assert counted("utm_medium") == {"(none)": 3 * third}
    assert counted("utm_campaign") == {"(none)": 2 * third, "spring": third}
