"""Daily aggregates: made from raw events once a day is complete, equal to them."""

from __future__ import annotations

from datetime import date, timedelta

from starlette.testclient import TestClient

from tests.conftest import view, visitor
from tourviews.analytics.rollup import roll_up_completed
from tourviews.app import TourviewsApp
from tourviews.storage.clock import ManualClock

IPAD = (
    "Mozilla/5.0 (iPad; CPU OS 16_0 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/16.0 Mobile/15E148 Safari/604.1"
)


def rollups(app: TourviewsApp, day: date) -> dict[tuple[str, str], tuple[int, int]]:
    rows = (
        app.service.db.cursor()
        .execute(
            "SELECT dimension, key, views, visitors FROM rollups WHERE tour = 't1' AND day = ?",
            [day],
        )
        .fetchall()
    )
    return {(dimension, key): (views, visitors) for dimension, key, views, visitors in rows}


def test_completed_day_is_rolled_up_once_with_every_dimension(
    app: TourviewsApp, client: TestClient, clock: ManualClock
) -> None:
    yesterday = clock.now().date() - timedelta(days=1)
    clock.advance(timedelta(days=-1))
    one, two = visitor(), visitor()
    view(client, one)
    clock.advance(timedelta(hours=2))
    view(client, two, IPAD, referrer="https://www.krisha.kz/a/show/1")
    view(client, two, IPAD, event="scene", scene="lobby")
    clock.advance(timedelta(days=1, hours=-2))
    view(client, one)  # today: not rolled up yet
    cursor = app.service.db.cursor()
    assert roll_up_completed(cursor, clock.now().date()) == [yesterday]
    assert roll_up_completed(cursor, clock.now().date()) == []
    assert rollups(app, yesterday) == {
        ("total", ""): (2, 2),
        ("hour", "12"): (1, 1),
        ("hour", "14"): (1, 1),
        ("device", "desktop"): (1, 1),
        ("device", "tablet"): (1, 1),
        ("browser", "Chrome"): (1, 1),
        ("browser", "Mobile Safari"): (1, 1),
        ("os", "Windows"): (1, 1),
        ("os", "iOS"): (1, 1),
        ("scene", "lobby"): (1, 1),
        ("source", "(direct)"): (1, 1),
        ("source", "krisha.kz"): (1, 1),
        ("channel", "direct"): (1, 1),
        ("channel", "referral"): (1, 1),
        ("utm_source", "(none)"): (2, 2),
        ("utm_medium", "(none)"): (2, 2),
        ("utm_campaign", "(none)"): (2, 2),
        ("country", "(unknown)"): (2, 2),  # counted without --geoip too, shown only with it
        # the day's visits: two, one through the lobby, neither engaged (views: visits)
        ("visits", ""): (2, 0),
        ("engaged", "0"): (2, 0),
        ("scenes", "0"): (1, 0),
        ("scenes", "1"): (1, 0),
        ("entry", "lobby"): (1, 0),
        ("exit", "lobby"): (1, 0),
        ("reached", "scene:lobby"): (1, 0),  # the visits that reached each goal it could have
    }
    assert rollups(app, clock.now().date()) == {}


def test_rolled_up_totals_equal_the_stats_from_raw_events(
    app: TourviewsApp, client: TestClient, clock: ManualClock, admin_token: str
) -> None:
    clock.advance(timedelta(days=-1))
    people = [visitor() for _ in range(7)]
    for person in people * 2:
        clock.advance(timedelta(minutes=31))  # past the dedup window: each is a view
        view(client, person)
    clock.advance(timedelta(days=1))
    day = (clock.now() - timedelta(days=1)).date()
    roll_up_completed(app.service.db.cursor(), clock.now().date())
    document = client.get(
        "/v1/tours/t1/stats",
        params={"from": str(day), "to": str(day)},
        headers={"Authorization": f"Bearer {admin_token}"},
    ).json()
    assert rollups(app, day)[("total", "")] == (
        document["totals"]["views"], document["totals"]["visitors"]
    )  # fmt: skip
    assert document["totals"]["views"] == 14
