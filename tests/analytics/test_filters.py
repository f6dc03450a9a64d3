"""Filtered reads on scripted visits: every figure counted by hand, and the refusals."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from httpx import Response
from starlette.testclient import TestClient

from tests.analytics.test_breakdowns import PLATFORM, add
from tests.analytics.test_exact import stored, traffic
from tests.builders import event
from tests.conftest import view, visitor
from tourviews.analytics.filters import parse_filters
from tourviews.analytics.period import Period
from tourviews.analytics.retention import purge
from tourviews.analytics.rollup import roll_up_completed
from tourviews.analytics.stats import tour_stats
from tourviews.storage.clock import ManualClock
from tourviews.storage.database import Database
from tourviews.storage.errors import InvalidValue
from tourviews.storage.event import Event

DAY = date(2026, 11, 24)
IPHONE = {"device": "mobile", "browser": "Mobile Safari", "os": "iOS"}
ANDROID = {"device": "mobile", "browser": "Chrome Mobile", "os": "Android"}
PC = {"device": "desktop", "browser": "Chrome", "os": "Windows"}
A, B, C, D = (f"00000000-0000-4000-8000-00000000000{n}" for n in range(1, 5))


def at(hour: int, minute: int = 0, day: date = DAY) -> datetime:
    return datetime.combine(day, datetime.min.time()) + timedelta(hours=hour, minutes=minute)


def visit(who: str, agent: dict[str, str], start: datetime, *steps: tuple[str, Any]) -> list[Event]:
    """A view at ``start``, then one step a minute: ("scene", name), ("engage", (seconds,
    scene)) or ("action", name)."""
    shared = {"visitor": who, **agent}
    rows = [event(ts=start, **shared)]
    for n, (kind, value) in enumerate(steps, 1):
        ts = start + timedelta(minutes=n)
        if kind == "scene":
            rows.append(event(ts=ts, kind="scene", scene=value, **shared))
        elif kind == "engage":
            rows.append(event(ts=ts, kind="engage", seconds=value[0], scene=value[1], **shared))
        else:
            rows.append(event(ts=ts, kind="action", action=value, **shared))
    return rows


SCRIPT = [
    # A, on an iPhone: the lobby, the kitchen and the form; later the lobby again
    *visit(A, IPHONE, at(10), ("scene", "lobby"), ("engage", (30, "lobby")),
           ("scene", "kitchen"), ("engage", (20, "kitchen")), ("action", "lead-form")),
    *visit(A, IPHONE, at(14), ("scene", "lobby"), ("engage", (10, "lobby"))),
    # B, on a PC: the kitchen, then the lobby
    *visit(B, PC, at(11), ("scene", "kitchen"), ("engage", (40, "kitchen")), ("scene", "lobby")),
    # C, on Android: the kitchen and the form; then a scene after a pause, in no visit
    *visit(C, ANDROID, at(12), ("scene", "kitchen"), ("action", "lead-form")),
    event(ts=at(13), kind="scene", scene="lobby", visitor=C, **ANDROID),
    # D, on a PC the day before
    *visit(D, PC, at(10, day=DAY - timedelta(days=1)), ("scene", "lobby")),
]  # fmt: skip


@pytest.fixture
def db() -> Iterator[Database]:
    yield from stored(SCRIPT)


def read(db: Database, *filters: str, period: Period | None = None) -> dict[str, Any]:
    return tour_stats(
        db.cursor(), "t1", period or Period(DAY, DAY, "day"), filters=parse_filters(filters)
    )


def test_a_device_filter_counts_the_visits_of_that_device_alone(db: Database) -> None:
    document = read(db, "device:mobile")
    assert document["filters"] == ["device:mobile"]
    assert document["totals"] == {
        "views": 3, "visitors": 2, "visitors_exact": True, "visits": 3, "engaged_seconds": 60,
        "engaged_seconds_per_visit": 10.0, "scenes_per_visit": 1.33, "bounce_rate": 0.6667,
    }  # fmt: skip
    assert document["series"] == [
        {"start": "2026-11-24T00:00:00Z", "views": 3, "visitors": 2, "visits": 3,
         "engaged_seconds": 60},
    ]  # fmt: skip


def test_the_breakdowns_of_a_filtered_read_hold_the_picked_visits_alone(db: Database) -> None:
    breakdown = read(db, "device:mobile")["breakdown"]
    assert breakdown["device"] == [{"key": "mobile", "views": 3, "visitors": 2}]
    assert breakdown["browser"] == [
        {"key": "Mobile Safari", "views": 2, "visitors": 1},
        {"key": "Chrome Mobile", "views": 1, "visitors": 1},
    ]
    # C's lobby after the pause belongs to no visit: not in a filtered read
    assert breakdown["scene"] == [
        {"key": "kitchen", "views": 2, "visitors": 2, "engaged_seconds": 20},
        {"key": "lobby", "views": 2, "visitors": 1, "engaged_seconds": 40},
    ]
    assert breakdown["entry_scene"] == [
        {"key": "lobby", "visits": 2},
        {"key": "kitchen", "visits": 1},
    ]
    assert breakdown["exit_scene"] == [
        {"key": "kitchen", "visits": 2},
        {"key": "lobby", "visits": 1},
    ]
    assert breakdown["action"] == [{"key": "lead-form", "count": 2, "visitors": 2}]
    assert read(db, "device:mobile")["transitions"] == [
        {"from": "lobby", "to": "kitchen", "visits": 1}
    ]


def test_two_filters_pick_the_visits_both_pick(db: Database) -> None:
    document = read(db, "device:mobile", "scene:kitchen")
    assert document["totals"]["views"] == 2  # A's first visit and C's
    assert document["totals"]["visitors"] == 2
    assert document["totals"]["visits"] == 2
    assert document["totals"]["engaged_seconds"] == 50
    assert read(db, "device:mobile", "device:desktop")["totals"]["visits"] == 0


@pytest.mark.parametrize(
    ("chosen", "views", "visitors", "engaged"),
    [
        ("entry_scene:kitchen", 2, 2, 40),  # B, C
        ("exit_scene:lobby", 2, 2, 50),  # A's second visit, B
        ("scene:lobby", 3, 2, 100),  # A's two visits, B (not C's lobby, in no visit)
        ("action:lead-form", 2, 2, 50),  # A's first visit, C
        ("os:Windows", 1, 1, 40),
        ("browser:Chrome Mobile", 1, 1, 0),
    ],
)
def test_a_filter_on_a_visit_dimension_picks_whole_visits(
    db: Database, chosen: str, views: int, visitors: int, engaged: int
) -> None:
    totals = read(db, chosen)["totals"]
    assert (totals["views"], totals["visitors"], totals["visits"]) == (views, visitors, views)
    assert totals["engaged_seconds"] == engaged


def test_a_filtered_hourly_series_places_each_visit_in_its_hour(db: Database) -> None:
    series = read(db, "device:mobile", period=Period(DAY, DAY, "hour"))["series"]
    assert len(series) == 24
    assert {e["start"][11:13]: e["views"] for e in series if e["views"]} == {
        "10": 1, "12": 1, "14": 1
    }  # fmt: skip
    assert series[10]["engaged_seconds"] == 50


def test_a_filtered_read_in_another_zone_counts_its_local_days(db: Database) -> None:
    kolkata = Period(DAY, DAY, "day", ZoneInfo("Asia/Kolkata"))  # 2026-11-23 18:30 UTC on
    document = read(db, "device:desktop", period=kolkata)
    assert document["series"] == [
        {"start": "2026-11-24T00:00:00+05:30", "views": 1, "visitors": 1, "visits": 1,
         "engaged_seconds": 40},
    ]  # fmt: skip


def test_previous_is_filtered_too_while_its_raw_events_are_kept(db: Database) -> None:
    previous = read(db, "device:desktop")["previous"]
    assert previous["from"] == previous["to"] == "2026-11-23"
    assert (previous["views"], previous["visits"], previous["visitors"]) == (1, 1, 1)


def test_a_filtered_read_before_the_kept_raw_events_names_the_first_day_it_answers(
    db: Database,
) -> None:
    roll_up_completed(db.cursor(), DAY + timedelta(days=1))
    purge(db.cursor(), DAY + timedelta(days=1), days=1)  # raw events kept from DAY
    assert read(db, "device:mobile")["totals"]["views"] == 3
    assert "views" not in read(db, "device:mobile")["previous"]  # the day before is gone
    with pytest.raises(InvalidValue) as refused:
        read(db, "device:mobile", period=Period(DAY - timedelta(days=1), DAY, "day"))
    assert refused.value.field == "filter"
    assert "2026-11-24" in refused.value.message
    # in a zone ahead of UTC, the local day that begins at the kept UTC midnight is later
    with pytest.raises(InvalidValue) as zoned:
        read(db, "device:mobile", period=Period(DAY, DAY, "day", ZoneInfo("Asia/Almaty")))
    assert "2026-11-25" in zoned.value.message


def test_a_breakdown_added_to_the_registry_filters_with_no_other_change(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    add(monkeypatch, PLATFORM)
    document = read(db, "platform:iOS")
    assert (document["totals"]["views"], document["totals"]["engaged_seconds"]) == (2, 60)
    assert document["breakdown"]["platform"] == [{"key": "iOS", "views": 2, "visitors": 1}]


def test_the_listing_says_which_breakdowns_filter(client: TestClient, admin_token: str) -> None:
    listed = get(client, admin_token, "/v1/tours", []).json()["breakdowns"]
    assert {b["name"]: b["filter"] for b in listed} == {
        "scene": True, "entry_scene": True, "exit_scene": True, "transitions": False,
        "action": True, "source": True, "channel": True, "utm_source": True,
        "utm_medium": True, "utm_campaign": True, "device": True, "browser": True, "os": True,
    }  # fmt: skip


def test_a_quote_in_a_key_is_a_key_like_any_other(db: Database) -> None:
    for key in ("mo'bile", "' OR '1'='1", "mobile'; DELETE FROM events; --", '"$tour"'):
        assert read(db, f"device:{key}")["totals"]["views"] == 0
    assert read(db)["totals"]["views"] == 4  # nothing was changed
    assert db.cursor().execute("SELECT count(*) FROM events").fetchone() == (len(SCRIPT),)


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("region:almaty", "no such breakdown"),
        ("transitions:lobby>kitchen", "no such breakdown"),
        ("device", "NAME:KEY"),
        ("device:", "the key"),
        ("device:\x00", "the key"),
        ("device:" + "x" * 201, "the key"),
    ],
)
def test_a_bad_filter_is_refused_naming_the_field(text: str, said: str) -> None:
    with pytest.raises(InvalidValue) as refused:
        parse_filters([text])
    assert refused.value.field == "filter"
    assert said in refused.value.message


def test_an_unknown_filter_lists_the_names_it_may_give() -> None:
    with pytest.raises(InvalidValue) as refused:
        parse_filters(["colour:red"])
    listed = ("scene, entry_scene, exit_scene, action, source, channel, utm_source, utm_medium, "
              "utm_campaign, device, browser, os, country")  # fmt: skip
    assert listed in refused.value.message


def test_filters_by_every_key_of_a_breakdown_share_its_visits_out() -> None:
    # each visit has one device, one entry scene: the filtered reads add up to the whole
    events = traffic(random.Random(5), visits=200)
    for db in stored(events):
        period = Period(date(2026, 11, 1), date(2026, 11, 10), "day")
        whole = tour_stats(db.cursor(), "t1", period)
        for name in ("device", "browser", "entry_scene"):
            rows = whole["breakdown"][name]
            picked = [
                tour_stats(
                    db.cursor(), "t1", period, filters=parse_filters([f"{name}:{row['key']}"])
                )
                for row in rows
            ]
            column = "visits" if name == "entry_scene" else "views"
            assert [p["totals"]["visits"] for p in picked] == [row[column] for row in rows]
            if name != "entry_scene":
                assert sum(p["totals"]["visits"] for p in picked) == whole["totals"]["visits"]
                assert (
                    sum(p["totals"]["engaged_seconds"] for p in picked)
                    == (whole["totals"]["engaged_seconds"])
                )


# Through the HTTP API: the parameter, its errors, the CSV and the weekly report.

PHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1"
)


@pytest.fixture
def two_devices(client: TestClient, clock: ManualClock) -> None:
    """Last week: a phone that entered the lobby, and a desktop; today, the same again."""
    clock.advance(timedelta(days=-3))
    for day in range(2):
        view(client, visitor(), PHONE, scene="lobby")
        view(client, visitor())
        clock.advance(timedelta(days=3 * (1 - day)))


def get(client: TestClient, token: str, path: str, params: list[tuple[str, str]]) -> Response:
    return client.get(path, params=params, headers={"Authorization": f"Bearer {token}"})


def test_the_stats_api_answers_for_the_visits_its_filters_pick(
    client: TestClient, admin_token: str, two_devices: None
) -> None:
    path = "/v1/tours/t1/stats"
    mobile = get(client, admin_token, path, [("filter", "device:mobile")]).json()
    assert (mobile["totals"]["views"], mobile["filters"]) == (2, ["device:mobile"])
    both = [("filter", "device:mobile"), ("filter", "entry_scene:lobby")]
    assert get(client, admin_token, path, both).json()["totals"]["visits"] == 2
    csv = get(client, admin_token, path, [("filter", "device:desktop"), ("format", "csv")]).text
    assert sum(int(line.split(",")[1]) for line in csv.splitlines()[1:]) == 2
    assert get(client, admin_token, path, []).json()["totals"]["views"] == 4


@pytest.mark.parametrize(
    ("value", "said"), [("colour:red", "one of scene, entry_scene"), ("device", "NAME:KEY")]
)
def test_a_bad_filter_answers_400_naming_the_field(
    client: TestClient, admin_token: str, value: str, said: str
) -> None:
    answer = get(client, admin_token, "/v1/tours/t1/stats", [("filter", value)])
    assert answer.status_code == 400
    assert answer.json()["field"] == "filter" and said in answer.json()["error"]


def test_a_quote_in_a_filter_through_http_counts_nothing_and_changes_nothing(
    client: TestClient, admin_token: str, two_devices: None
) -> None:
    path = "/v1/tours/t1/stats"
    for key in ("mobile' OR '1'='1", "x'); DROP TABLE events; --"):
        answer = get(client, admin_token, path, [("filter", f"device:{key}")])
        assert answer.status_code == 200 and answer.json()["totals"]["views"] == 0
    assert get(client, admin_token, path, []).json()["totals"]["views"] == 4


def test_the_weekly_report_counts_the_visits_its_filters_pick(
    client: TestClient, admin_token: str, two_devices: None
) -> None:
    params = [("org", "acme"), ("format", "json"), ("filter", "device:mobile")]
    report = get(client, admin_token, "/v1/admin/report", params).json()
    assert report["filters"] == ["device:mobile"]
    assert {t["tour"]: t["totals"]["views"] for t in report["tours"]} == {"t1": 1, "locked": 0}
    assert report["details"][0]["current"]["breakdown"]["device"] == [
        {"key": "mobile", "views": 1, "visitors": 1}
    ]
    whole = get(client, admin_token, "/v1/admin/report", params[:2]).json()
    assert whole["tours"][0]["totals"]["views"] == 2
    page = get(client, admin_token, "/v1/admin/report", [("org", "acme"), *params[2:]]).text
    assert "Only the visits with device:mobile" in page
