"""The pipeline end to end over HTTP: what is counted and what is only acknowledged."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import duckdb
import orjson
from starlette.testclient import TestClient

from tests.conftest import CHROME, counted_views, visitor
from tourviews.app import TourviewsApp, create_app
from tourviews.settings import Settings
from tourviews.storage.clock import ManualClock

TEXT = {"Content-Type": "text/plain"}


def send(client: TestClient, body: dict[str, str], **headers: str) -> int:
    response = client.post("/v1/beacon", content=orjson.dumps(body), headers={**TEXT, **headers})
    return response.status_code


def stop_and_count(app: TourviewsApp, client: TestClient) -> int:
    client.__exit__(None, None, None)
    return counted_views(app.service.settings.data_dir, "t1")


def test_reload_within_the_window_is_one_view(
    app: TourviewsApp, client: TestClient, clock: ManualClock
) -> None:
    same = {"tour": "t1", "visitor": visitor()}
    assert send(client, same) == 204
    clock.advance(timedelta(minutes=29))
    assert send(client, same) == 204  # acknowledged, not counted
    assert stop_and_count(app, client) == 1


def test_return_after_the_window_is_a_second_view(
    app: TourviewsApp, client: TestClient, clock: ManualClock
) -> None:
    same = {"tour": "t1", "visitor": visitor()}
    send(client, same)
    clock.advance(timedelta(minutes=30))
    send(client, same)
    assert stop_and_count(app, client) == 2


def test_crawler_gets_204_but_is_not_counted(app: TourviewsApp, client: TestClient) -> None:
    googlebot = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
    assert send(client, {"tour": "t1", "visitor": visitor()}, **{"User-Agent": googlebot}) == 204
    assert send(client, {"tour": "t1", "visitor": visitor()}, **{"User-Agent": ""}) == 204
    assert stop_and_count(app, client) == 0


def test_dropped_beacons_are_counted_by_reason(app: TourviewsApp, client: TestClient) -> None:
    same = {"tour": "t1", "visitor": visitor()}
    send(client, same)
    send(client, same)
    send(client, {"tour": "nosuchtour", "visitor": visitor()})
    client.post("/v1/beacon", content=b"{", headers=TEXT)
    client.__exit__(None, None, None)

    path = app.service.settings.data_dir / "tourviews.duckdb"
    with duckdb.connect(str(path), read_only=True) as con:
        reasons = dict(
            con.execute("SELECT reason, sum(beacons) FROM drop_counters GROUP BY 1").fetchall()
        )
    assert reasons == {"duplicate": 1, "unknown_tour": 1, "invalid": 1}


def test_dedup_state_survives_a_restart(
    app: TourviewsApp, client: TestClient, clock: ManualClock
) -> None:

    same = {"tour": "t1", "visitor": visitor()}
    send(client, same)
    client.__exit__(None, None, None)
    clock.advance(timedelta(minutes=5))
    again = create_app(app.service.settings, clock)
    with TestClient(again, headers={"user-agent": CHROME}) as second:
        assert send(second, same) == 204
    assert counted_views(app.service.settings.data_dir, "t1") == 1


def stored_sources(data_dir: Path) -> list[tuple[str | None, str | None, str | None]]:
    path = data_dir / "tourviews.duckdb"
    with duckdb.connect(str(path), read_only=True) as con:
        rows = con.execute("SELECT source, channel, utm_campaign FROM events ORDER BY ts")
        return rows.fetchall()


def test_a_tours_bound_of_sources_holds_across_a_restart(
    settings: Settings, clock: ManualClock
) -> None:
    settings = replace(settings, max_scenes=2)
    first = create_app(settings, clock)
    first.service.registry.put_tour("t1", "acme")
    with TestClient(first, headers={"user-agent": CHROME}) as client:
        for host in ("a.example", "b.example"):
            assert send(client, {"tour": "t1", "visitor": visitor(), "referrer": host}) == 204
            clock.advance(timedelta(seconds=1))
    again = create_app(settings, clock)
    with TestClient(again, headers={"user-agent": CHROME}) as client:
        for host in ("c.example", "a.example"):
            assert send(client, {"tour": "t1", "visitor": visitor(), "referrer": host}) == 204
            clock.advance(timedelta(seconds=1))
    assert [source for source, _, _ in stored_sources(settings.data_dir)] == [
        "a.example", "b.example", "(other)", "a.example"
    ]  # fmt: skip


def test_an_old_beacon_is_direct_and_a_bad_field_stores_nothing(
    app: TourviewsApp, client: TestClient, clock: ManualClock
) -> None:
    assert send(client, {"tour": "t1", "visitor": visitor()}) == 204
    clock.advance(timedelta(seconds=1))
    for field, value in (("referrer", "about:blank"), ("embedded", "yes"),
                         ("utm_campaign", "x" * 101)):  # fmt: skip
        answer = client.post("/v1/beacon", headers=TEXT, content=orjson.dumps(
            {"tour": "t1", "visitor": visitor(), field: value}))  # fmt: skip
        assert answer.status_code == 400
        assert answer.json()["field"] == field
    came = {"referrer": "https://www.krisha.kz/a/show/1?x=2", "utm_campaign": "spring"}
    assert send(client, {"tour": "t1", "visitor": visitor(), **came}) == 204
    client.__exit__(None, None, None)
    assert stored_sources(app.service.settings.data_dir) == [
        (None, "direct", None),
        ("krisha.kz", "campaign", "spring"),
    ]
