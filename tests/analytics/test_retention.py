"""Purge and erasure with an injected clock, including days answered by sketches."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta
from typing import Any

import pytest
from starlette.testclient import TestClient

from tests.conftest import view, visitor
from tourviews.analytics.rollup import roll_up_completed
from tourviews.app import TourviewsApp
from tourviews.storage.clock import ManualClock


def stats(client: TestClient, token: str, first: str, last: str, **params: str) -> Any:
    response = client.get(
        "/v1/tours/t1/stats",
        params={"from": first, "to": last, **params},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 200, response.text
    return response.json()


def admin(client: TestClient, token: str, method: str, path: str) -> Any:
    response = client.request(method, path, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture
def forty_days(client: TestClient, clock: ManualClock) -> list[str]:
    """40 days of traffic: 3 regulars every day, one newcomer a day, a scene view a day."""
    regulars = [visitor() for _ in range(3)]
    clock.advance(timedelta(days=-39))
    for _ in range(40):
        for person in regulars:
            view(client, person)
        newcomer = visitor()
        view(client, newcomer)
        view(client, newcomer, event="scene", scene="lobby")
        clock.advance(timedelta(days=1))
    clock.advance(timedelta(days=-1))  # back to the last day: today, 2026-11-24
    return regulars


def test_purge_deletes_old_raw_events_and_the_numbers_stay(
    client: TestClient, admin_token: str, forty_days: list[str]
) -> None:
    before = stats(client, admin_token, "2026-10-16", "2026-11-24")
    assert (
        before["totals"].items() >= {"views": 160, "visitors": 43, "visitors_exact": True}.items()
    )
    deleted = admin(client, admin_token, "POST", "/v1/admin/purge")["deleted"]
    assert deleted == 9 * 5  # the 9 days before 2026-10-25 (30 days back), 5 events a day
    assert admin(client, admin_token, "POST", "/v1/admin/purge")["deleted"] == 0
    after = stats(client, admin_token, "2026-10-16", "2026-11-24")
    assert after["totals"]["views"] == 160
    assert after["totals"]["visitors_exact"] is False
    assert abs(after["totals"]["visitors"] - 43) <= 1  # a sketch union, ~1.6% error
    assert after["series"] == before["series"]  # each day is still exact
    assert after["breakdown"]["scene"][0]["views"] == 40


def test_one_day_past_retention_is_still_exact(
    client: TestClient, admin_token: str, forty_days: list[str]
) -> None:
    admin(client, admin_token, "POST", "/v1/admin/purge")
    day = stats(client, admin_token, "2026-10-17", "2026-10-17")
    assert day["totals"].items() >= {"views": 4, "visitors": 4, "visitors_exact": True}.items()
    hourly = stats(client, admin_token, "2026-10-17", "2026-10-17", interval="hour")
    assert [e["views"] for e in hourly["series"] if e["views"]] == [4]


def test_ranges_within_retention_stay_exact_after_purge(
    client: TestClient, admin_token: str, forty_days: list[str]
) -> None:
    admin(client, admin_token, "POST", "/v1/admin/purge")
    recent = stats(client, admin_token, "2026-11-01", "2026-11-24")
    assert recent["totals"].items() >= {"views": 96, "visitors": 27, "visitors_exact": True}.items()


def test_erasure_removes_a_visitor_everywhere_and_corrects_the_rollups(
    app: TourviewsApp, client: TestClient, admin_token: str, forty_days: list[str]
) -> None:
    gone = forty_days[0]
    roll_up_completed(app.service.db.cursor(), date(2026, 11, 24))
    assert admin(client, admin_token, "DELETE", f"/v1/admin/visitors/{gone}") == {"deleted": 40}
    document = stats(client, admin_token, "2026-10-16", "2026-11-24")
    assert (
        document["totals"].items() >= {"views": 120, "visitors": 42, "visitors_exact": True}.items()
    )
    rolled = (
        app.service.db.cursor()
        .execute(
            "SELECT sum(views), sum(visitors) FROM rollups WHERE dimension = 'total' AND tour = 't1'"
        )
        .fetchone()
    )
    assert rolled == (39 * 3, 39 * 3)  # 39 completed days, 3 views by 3 visitors each
    assert admin(client, admin_token, "DELETE", f"/v1/admin/visitors/{gone}") == {"deleted": 0}


def test_erasure_refuses_a_malformed_visitor(client: TestClient, admin_token: str) -> None:
    response = client.delete(
        "/v1/admin/visitors/not-a-uuid", headers={"Authorization": f"Bearer {admin_token}"}
    )
    assert response.status_code == 400
    assert response.json()["field"] == "visitor"


def test_the_service_applies_retention_by_itself_once_a_day(
    app: TourviewsApp, client: TestClient, forty_days: list[str]
) -> None:
    app.service.keep_house()
    cursor = app.service.db.cursor()
    oldest = cursor.execute("SELECT min(ts)::DATE::VARCHAR FROM events").fetchone()
    assert oldest == ("2026-10-25",)


def test_source_hashes_of_drops_are_dropped_after_7_days(
    app: TourviewsApp, client: TestClient, clock: ManualClock, admin_token: str
) -> None:
    same = visitor()
    clock.advance(timedelta(days=-10))
    view(client, same)
    view(client, same)  # a duplicate: a drop counter with the source's hash
    clock.advance(timedelta(days=10))
    admin(client, admin_token, "POST", "/v1/admin/purge")
    rows = app.service.db.cursor().execute("SELECT ip_hash, beacons FROM drops").fetchall()
    assert rows == [(b"", 1)]
    report = admin(client, admin_token, "GET", "/v1/admin/abuse?from=2026-11-01&to=2026-11-24")
    assert report["totals"]["duplicate"] == 1
    # The source now shows only its counted view (raw events keep their hash 30 days).
    assert [source["events"] for source in report["top_sources"]] == [1]


def test_erasures_purges_and_housekeeping_at_once_all_succeed(
    app: TourviewsApp, client: TestClient, admin_token: str, forty_days: list[str]
) -> None:
    # They all rewrite the same rolled-up days: unserialized, DuckDB aborts all but one.
    roll_up_completed(app.service.db.cursor(), date(2026, 11, 24))
    erase = [("DELETE", f"/v1/admin/visitors/{person}") for person in forty_days]
    calls = [*erase, ("POST", "/v1/admin/purge"), ("POST", "/v1/admin/purge")]
    with ThreadPoolExecutor(len(calls) + 1) as pool:
        housekeeping = pool.submit(app.service.keep_house)
        answers = list(pool.map(lambda call: admin(client, admin_token, *call), calls))
        housekeeping.result()
    # 40 days of events, or the 31 left when a purge went first
    assert {answer["deleted"] for answer in answers[: len(erase)]} <= {40, 31}
    left = stats(client, admin_token, "2026-10-25", "2026-11-24")["totals"]
    assert (
        left.items() >= {"views": 31, "visitors": 31, "visitors_exact": True}.items()
    )  # newcomers


def test_a_conflicting_transaction_answers_503_and_keeps_nothing(
    app: TourviewsApp, client: TestClient, admin_token: str, forty_days: list[str]
) -> None:
    other = app.service.db.cursor().cursor()  # another transaction on the same database
    other.begin()
    other.execute("DELETE FROM events WHERE visitor = ?::UUID", [forty_days[0]])
    try:
        response = client.delete(
            f"/v1/admin/visitors/{forty_days[0]}",
            headers={"Authorization": f"Bearer {admin_token}"},
        )
    finally:
        other.rollback()
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    assert response.json()["field"] is None
    assert admin(client, admin_token, "DELETE", f"/v1/admin/visitors/{forty_days[0]}") == {
        "deleted": 40
    }
