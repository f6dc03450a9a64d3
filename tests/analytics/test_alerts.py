"""Alerts: a tour far above its usual hourly level, a source stopped hour after hour."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from tests.conftest import send, visitor
from tourviews.app import TourviewsApp
from tourviews.settings import Settings
from tourviews.storage.clock import ManualClock


@pytest.fixture
def settings(data_dir: Path) -> Settings:
    """All test traffic comes from one address: let it present many visitor IDs."""
    return Settings(data_dir=data_dir, rotation_limit=10_000)


def report(client: TestClient, token: str) -> Any:
    response = client.get(
        "/v1/admin/abuse",
        params={"from": "2026-11-24", "to": "2026-11-24"},
        headers={"Authorization": f"Bearer {token}"},
    )
    return response.json()


def test_hour_far_above_the_usual_level_is_a_spike(
    client: TestClient, clock: ManualClock, admin_token: str
) -> None:
    clock.advance(timedelta(days=-7))
    for _ in range(7 * 24):  # a quiet week: one view an hour
        send(client, visitor())
        clock.advance(timedelta(hours=1))
    quiet = report(client, admin_token)["alerts"]
    for _ in range(60):
        assert send(client, visitor()) == 204
    alerts = report(client, admin_token)["alerts"]
    assert quiet == []
    assert alerts == [
        {"kind": "spike", "tour": "t1", "hour": "2026-11-24T12:00:00Z", "views": 60, "usual": 1.0}
    ]


def test_usual_busy_traffic_is_no_spike(
    client: TestClient, clock: ManualClock, admin_token: str
) -> None:
    clock.advance(timedelta(days=-7))
    for _ in range(7 * 24):
        for _ in range(5):
            send(client, visitor())
        clock.advance(timedelta(hours=1))
    for _ in range(20):  # four times the usual: busy, not a spike
        send(client, visitor())
    assert report(client, admin_token)["alerts"] == []


def test_source_throttled_in_three_hours_is_flagged(
    client: TestClient, clock: ManualClock, admin_token: str
) -> None:
    clock.advance(timedelta(hours=-3))
    same = visitor()
    for _ in range(3):
        statuses = [send(client, same) for _ in range(31)]
        assert statuses[-1] == 429
        clock.advance(timedelta(hours=1))
    send(client, visitor())  # an acknowledged beacon: the refused ones are committed by then
    [alert] = report(client, admin_token)["alerts"]
    assert alert["kind"] == "throttled"
    assert (alert["hours"], alert["beacons"]) == (3, 3)
    assert len(alert["ip_hash"]) == 32


def test_a_new_tour_raises_no_spike_in_its_first_day(
    client: TestClient, clock: ManualClock, admin_token: str
) -> None:
    for _ in range(60):  # its very first hour: anything looks like a spike
        assert send(client, visitor()) == 204
    assert report(client, admin_token)["alerts"] == []


def test_a_quiet_tour_needs_fifty_views_in_an_hour(
    client: TestClient, clock: ManualClock, admin_token: str
) -> None:
    clock.advance(timedelta(days=-2))
    for _ in range(24):  # two days with one view every other hour
        send(client, visitor())
        clock.advance(timedelta(hours=2))
    for _ in range(45):  # 90 times its usual level, but under the floor, 5 times 10
        send(client, visitor())
    assert report(client, admin_token)["alerts"] == []
    for _ in range(5):
        send(client, visitor())
    assert [alert["views"] for alert in report(client, admin_token)["alerts"]] == [50]


def test_the_demo_raises_no_spike_on_its_first_day(data_dir: Path) -> None:
    from tourviews.control import connect
    from tourviews.demo import run_demo

    run_demo(Settings(data_dir=data_dir), days=1)
    backend = connect(data_dir)
    try:
        alerts = backend.abuse(None, None)["alerts"]
    finally:
        backend.close()
    assert [alert for alert in alerts if alert["kind"] == "spike"] == []


def test_a_tour_first_seen_late_in_the_evening_is_new_the_next_morning(
    client: TestClient, clock: ManualClock, admin_token: str, app: TourviewsApp
) -> None:
    clock.set(clock.now().replace(hour=23, minute=30) - timedelta(days=1))
    send(client, visitor())  # the tour's first view, late on the 23rd
    clock.set(clock.now().replace(hour=0, minute=20) + timedelta(days=1))
    app.service.keep_house()  # the 23rd is rolled up: its rollup's day begins at 00:00
    clock.set(clock.now().replace(hour=1))
    for _ in range(60):
        send(client, visitor())
    assert report(client, admin_token)["alerts"] == []  # under 24 hours of history
