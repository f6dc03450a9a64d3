"""Visits, engagement and actions: through real HTTP, and the rules of the ingest path."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import orjson
import pytest
from starlette.testclient import TestClient

from tests.conftest import CHROME, StartServer, send, visitor
from tourviews.app import TourviewsApp, create_app
from tourviews.storage.clock import ManualClock

KOLKATA = ZoneInfo("Asia/Kolkata")


def cli(data_dir: Path, *args: str) -> str:
    command = [sys.executable, "-m", "tourviews", *args, "--data", str(data_dir)]
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout


def test_two_scripted_visits_through_http_give_exact_figures(
    start: StartServer, data_dir: Path
) -> None:
    cli(data_dir, "tours", "add", "t1", "--org", "acme", "--timezone", "Asia/Kolkata")
    server = start(data_dir)
    token = cli(data_dir, "tokens", "create", "--org", "acme").split()[-1]
    a, b = visitor(), visitor()
    script = [
        (a, {"event": "view"}),
        (a, {"event": "scene", "scene": "lobby"}),
        (a, {"event": "engage", "seconds": 30, "scene": "lobby"}),
        (a, {"event": "scene", "scene": "kitchen"}),
        (a, {"event": "engage", "seconds": 20, "scene": "kitchen"}),
        (a, {"event": "action", "name": "lead-form"}),
        (b, {"event": "view"}),
        (b, {"event": "scene", "scene": "lobby"}),
        (b, {"event": "engage", "seconds": 5, "scene": "lobby"}),
    ]
    with httpx.Client(base_url=server.url, headers={"User-Agent": CHROME}) as http:
        for who, fields in script:
            body = orjson.dumps({"tour": "t1", "visitor": who, **fields})
            answer = http.post("/v1/beacon", content=body, headers={"Content-Type": "text/plain"})
            assert answer.status_code == 204, answer.text
        auth = {"Authorization": f"Bearer {token}"}
        document = http.get("/v1/tours/t1/stats", headers=auth).json()
        now = http.get("/v1/tours/t1/now", headers=auth).json()
    assert document["totals"] == {
        "views": 2, "visitors": 2, "visitors_exact": True, "visits": 2, "engaged_seconds": 55,
        "engaged_seconds_per_visit": 27.5, "scenes_per_visit": 1.5, "bounce_rate": 0.5,
    }  # fmt: skip
    breakdown = document["breakdown"]
    assert breakdown["entry_scene"] == [{"key": "lobby", "visits": 2}]
    assert breakdown["exit_scene"] == [
        {"key": "kitchen", "visits": 1},
        {"key": "lobby", "visits": 1},
    ]
    assert breakdown["action"] == [{"key": "lead-form", "count": 1, "visitors": 1}]
    assert document["transitions"] == [{"from": "lobby", "to": "kitchen", "visits": 1}]
    assert {row["key"]: row["engaged_seconds"] for row in breakdown["scene"]} == {
        "lobby": 35, "kitchen": 20,
    }  # fmt: skip
    # The tour's days are Kolkata's: today there, at +05:30, holds both views
    today = datetime.now(KOLKATA).date()
    assert document["timezone"] == "Asia/Kolkata" and document["to"] == today.isoformat()
    assert document["series"][-1] == {
        "start": f"{today.isoformat()}T00:00:00+05:30", "views": 2, "visitors": 2, "visits": 2,
        "engaged_seconds": 55,
    }  # fmt: skip
    assert now == {"visitors": 2}
    assert "visits 2" in cli(data_dir, "stats", "t1")


@pytest.fixture
def auth(app: TourviewsApp) -> dict[str, str]:
    return {"Authorization": f"Bearer {app.service.registry.create_token('acme')}"}


def stats(client: TestClient, auth: dict[str, str], **params: str) -> dict[str, Any]:
    answer = client.get("/v1/tours/t1/stats", headers=auth, params=params)
    assert answer.status_code == 200, answer.text
    document: dict[str, Any] = answer.json()
    return document


def stored(app: TourviewsApp) -> list[tuple[str, int | None, str | None]]:
    with app.service.db.using() as cursor:
        rows = cursor.execute("SELECT kind, seconds, action FROM events ORDER BY ts").fetchall()
    return [(str(kind), seconds, action) for kind, seconds, action in rows]


def test_engagement_and_actions_outside_a_visit_are_not_counted(
    app: TourviewsApp, client: TestClient, clock: ManualClock
) -> None:
    who = visitor()
    assert send(client, who, event="engage", seconds=10) == 204  # type: ignore[arg-type]
    assert send(client, who, event="action", name="call") == 204
    assert send(client, who, event="view") == 204
    assert send(client, who, event="engage", seconds=10) == 204  # type: ignore[arg-type]
    clock.advance(timedelta(minutes=31))  # the visit ended
    assert send(client, who, event="action", name="call") == 204
    assert stored(app) == [("view", None, None), ("engage", 10, None)]
    assert app.service.beacon.outcomes["outside_visit"] == 3


def test_each_beacon_of_a_visit_keeps_it_going(
    app: TourviewsApp, client: TestClient, clock: ManualClock
) -> None:
    who = visitor()
    assert send(client, who, event="view") == 204
    for _ in range(3):
        clock.advance(timedelta(minutes=25))
        assert send(client, who, event="engage", seconds=60) == 204  # type: ignore[arg-type]
    assert [kind for kind, _, _ in stored(app)] == ["view", "engage", "engage", "engage"]


def test_engagement_and_actions_are_not_deduplicated(app: TourviewsApp, client: TestClient) -> None:
    who = visitor()
    send(client, who, event="view")
    for _ in range(2):
        assert send(client, who, event="engage", seconds=5, scene="hall") == 204  # type: ignore[arg-type]
        assert send(client, who, event="action", name="call") == 204
    assert len(stored(app)) == 5


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"event": "engage"}, "seconds"),
        ({"event": "engage", "seconds": 0}, "seconds"),
        ({"event": "engage", "seconds": 1801}, "seconds"),
        ({"event": "engage", "seconds": "5"}, "seconds"),
        ({"event": "engage", "seconds": 2.5}, "seconds"),
        ({"event": "engage", "seconds": True}, "seconds"),
        ({"event": "action"}, "name"),
        ({"event": "action", "name": "book a viewing"}, "name"),
        ({"event": "action", "name": "x" * 65}, "name"),
        ({"event": "click"}, "event"),
    ],
)
def test_a_malformed_engage_or_action_answers_400_naming_the_field(
    client: TestClient, fields: dict[str, object], field: str
) -> None:
    body = orjson.dumps({"tour": "t1", "visitor": visitor(), **fields})
    answer = client.post("/v1/beacon", content=body, headers={"Content-Type": "text/plain"})
    assert answer.status_code == 400
    assert answer.json()["field"] == field


def test_action_names_past_the_bound_are_dropped(
    settings: Any, clock: ManualClock, data_dir: Path
) -> None:
    from dataclasses import replace

    app = create_app(replace(settings, max_scenes=2), clock)
    app.service.registry.put_tour("t1", "acme")
    with TestClient(app, headers={"user-agent": CHROME}) as client:
        who = visitor()
        send(client, who, event="view")
        for name in ("a", "b", "c", "a"):
            assert send(client, who, event="action", name=name) == 204
        assert [action for _, _, action in stored(app)] == [None, "a", "b", "a"]
        assert app.service.beacon.outcomes["scene_limit"] == 1


def test_a_visit_ends_at_utc_midnight(
    app: TourviewsApp, client: TestClient, clock: ManualClock, auth: dict[str, str]
) -> None:
    clock.set(datetime(2026, 11, 24, 23, 50, tzinfo=ZoneInfo("UTC")))
    who = visitor()
    send(client, who, event="view")
    clock.advance(timedelta(minutes=5))
    assert send(client, who, event="engage", seconds=300) == 204  # type: ignore[arg-type]
    clock.advance(timedelta(minutes=10))  # 00:05: the next day
    assert send(client, who, event="engage", seconds=600) == 204  # type: ignore[arg-type]
    assert send(client, who, event="action", name="call") == 204
    assert app.service.beacon.outcomes["outside_visit"] == 2
    document = stats(client, auth, **{"from": "2026-11-24", "to": "2026-11-25"})
    assert document["totals"]["engaged_seconds"] == 300


def test_a_visit_goes_on_across_a_restart(
    app: TourviewsApp, client: TestClient, clock: ManualClock
) -> None:
    who = visitor()
    send(client, who, event="view")
    send(client, who, event="scene", scene="hall")
    client.__exit__(None, None, None)
    clock.advance(timedelta(minutes=20))
    again = create_app(app.service.settings, clock)
    with TestClient(again, headers={"user-agent": CHROME}) as second:
        assert send(second, who, event="engage", seconds=30) == 204  # type: ignore[arg-type]
        assert send(second, visitor(), event="engage", seconds=30) == 204  # type: ignore[arg-type]
        assert again.service.beacon.outcomes["outside_visit"] == 1
        assert again.service.beacon.outcomes["counted"] == 1


def test_a_kolkata_tour_counts_a_view_on_its_local_date(
    app: TourviewsApp, client: TestClient, clock: ManualClock, auth: dict[str, str]
) -> None:
    app.service.registry.put_tour("t1", "acme", timezone="Asia/Kolkata")
    clock.set(datetime(2026, 11, 24, 20, 0, tzinfo=ZoneInfo("UTC")))  # 01:30 on the 25th there
    send(client, visitor(), event="view")
    document = stats(client, auth)
    assert (document["from"], document["to"]) == ("2026-10-27", "2026-11-25")
    assert document["series"][-1] == {
        "start": "2026-11-25T00:00:00+05:30", "views": 1, "visitors": 1, "visits": 1,
        "engaged_seconds": 0,
    }  # fmt: skip
    in_utc = stats(client, auth, tz="UTC")
    assert in_utc["series"][-1].items() >= {"start": "2026-11-24T00:00:00Z", "views": 1}.items()
    hours = stats(client, auth, **{"from": "2026-11-25", "to": "2026-11-25", "interval": "hour"})
    assert len(hours["series"]) == 24
    assert hours["series"][1].items() >= {"start": "2026-11-25T01:00:00+05:30", "visits": 1}.items()


@pytest.mark.parametrize(
    "zone", ["Mars/Olympus", "EST", "", "../../etc/passwd", "posix/Asia/Almaty", "right/UTC"]
)
def test_an_unknown_zone_answers_400_naming_tz(
    client: TestClient, auth: dict[str, str], zone: str
) -> None:
    answer = client.get("/v1/tours/t1/stats", headers=auth, params={"tz": zone})
    assert answer.status_code == 400
    assert answer.json()["field"] == "tz"


def test_a_tour_registered_with_an_unknown_zone_is_refused(
    client: TestClient, app: TourviewsApp
) -> None:
    token = app.service.registry.create_token("ops", admin=True)
    answer = client.put(
        "/v1/admin/tours/t9", headers={"Authorization": f"Bearer {token}"},
        json={"org": "acme", "timezone": "Almaty"},
    )  # fmt: skip
    assert answer.status_code == 400
    assert answer.json()["field"] == "timezone"
    assert "t9" not in app.service.registry.tours
