"""The abuse document: every beacon sent is either counted or counted by its reason."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import orjson
import pytest
from starlette.testclient import TestClient

from tests.conftest import CHROME, visitor
from tourviews.app import TourviewsApp, create_app
from tourviews.cli import main
from tourviews.settings import Settings
from tourviews.storage.clock import ManualClock

GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
TEXT = {"Content-Type": "text/plain"}


@pytest.fixture
def guarded(settings: Settings, clock: ManualClock) -> Iterator[tuple[TourviewsApp, TestClient]]:
    """The service with a rotation limit of 3 visitor IDs per address and tour."""
    app = create_app(dataclasses.replace(settings, rotation_limit=3), clock)
    app.service.registry.put_tour("t1", "acme")
    with TestClient(app, headers={"user-agent": CHROME}) as client:
        yield app, client


def send(client: TestClient, who: str, tour: str = "t1", **headers: str) -> int:
    body = orjson.dumps({"tour": tour, "visitor": who})
    return client.post("/v1/beacon", content=body, headers=TEXT | headers).status_code


def test_abuse_totals_match_what_was_sent(guarded: tuple[TourviewsApp, TestClient]) -> None:
    app, client = guarded
    same = visitor()
    statuses = [send(client, same) for _ in range(32)]  # 1 view, 29 repeats, then throttled
    assert statuses.count(429) == 2
    second = visitor()
    assert send(client, second) == send(client, visitor()) == 204  # 3 visitor IDs: the limit
    assert send(client, visitor()) == send(client, visitor()) == 204  # rotation: not counted
    bot = visitor()
    assert send(client, bot, **{"User-Agent": GOOGLEBOT}) == 204
    assert send(client, bot, **{"User-Agent": GOOGLEBOT}) == 204
    assert send(client, visitor(), tour="nosuchtour") == 404
    assert client.post("/v1/beacon", content=b"{", headers=TEXT).status_code == 400
    assert (
        client.post("/v1/beacon", content=b"{}", headers={"Content-Type": "x/y"}).status_code == 415
    )
    # Refused beacons are counted with the next commit; an acknowledged one waits for it.
    assert send(client, second) == 204  # a repeat

    token = app.service.registry.create_token("ops", admin=True)
    report = client.get("/v1/admin/abuse", headers={"Authorization": f"Bearer {token}"}).json()
    assert report["totals"] == {
        "counted": 3, "bot": 2, "duplicate": 30, "rotation": 2,
        "throttled": 2, "invalid": 2, "unknown_tour": 1, "origin": 0, "scene_limit": 0,
        "withdrawn": 0, "outside_visit": 0,
    }  # fmt: skip
    assert sum(report["totals"].values()) == 42  # every beacon sent, once
    [source] = report["top_sources"]
    assert (source["events"], source["throttled"], source["visitors"]) == (42, 2, 3)
    assert len(source["ip_hash"]) == 32
    assert report["top_tours"] == [{"tour": "t1", "events": 39, "not_counted": 36}]
    *before, today = report["series"]  # the default: 30 days up to today
    assert today == {"start": "2026-11-24T00:00:00Z"} | report["totals"]
    assert len(before) == 29 and all(
        count == 0 for day in before for key, count in day.items() if key != "start"
    )
    assert report["alerts"] == []


def test_abuse_needs_an_admin_token(app: TourviewsApp, client: TestClient) -> None:
    owner = app.service.registry.create_token("acme")
    assert client.get("/v1/admin/abuse").status_code == 401
    assert (
        client.get("/v1/admin/abuse", headers={"Authorization": f"Bearer {owner}"}).status_code
        == 403
    )


def test_abuse_command_prints_the_same_document(
    app: TourviewsApp, client: TestClient, capsys: pytest.CaptureFixture[str]
) -> None:
    assert send(client, visitor(), **{"User-Agent": GOOGLEBOT}) == 204
    token = app.service.registry.create_token("ops", admin=True)
    # the app runs on a manual clock and the command on the system's: the period is
    # named, or the command's default (30 days up to today) would miss it one day
    day = app.service.clock.now().date().isoformat()
    over_http = client.get(
        "/v1/admin/abuse",
        params={"from": day, "to": day},
        headers={"Authorization": f"Bearer {token}"},
    ).json()
    assert over_http["totals"]["bot"] == 1
    client.__exit__(None, None, None)
    data = str(app.service.settings.data_dir)
    capsys.readouterr()
    period = ["--from", day, "--to", day]
    assert main(["abuse", "--data", data, "--format", "json", *period]) == 0
    assert orjson.loads(capsys.readouterr().out)["totals"] == over_http["totals"]
    assert main(["abuse", "--data", data, *period]) == 0
    table = capsys.readouterr().out
    assert "bot" in table and "top sources" in table
