"""No single source can inflate, starve or read the count, and wall-clock steps lose nothing.

Over HTTP through a trusted proxy, so that each beacon can come from an address of
the test's choosing; counts are read back through the stats and abuse APIs.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import orjson
import pytest
from starlette.testclient import TestClient

from tests.conftest import ADMIN_ORG, CHROME
from tourviews.app import TourviewsApp, create_app
from tourviews.settings import Settings
from tourviews.storage.clock import ManualClock

PROXY = "127.0.0.1"
NETWORK = "2001:db8:7:1"  # one residential /64


@pytest.fixture
def app(data_dir: Any, clock: ManualClock) -> TourviewsApp:
    settings = Settings(data_dir=data_dir, trusted_proxies=Settings.proxies([f"{PROXY}/32"]))
    app = create_app(settings, clock)
    app.service.registry.put_tour("t1", "acme")
    app.service.registry.put_tour("locked", "acme", ["https://good.example"])
    app.service.registry.put_tour("declared", "acme", scenes=["lobby", "kitchen"])
    return app


@pytest.fixture
def client(app: TourviewsApp) -> Iterator[TestClient]:
    with TestClient(app, headers={"user-agent": CHROME}, client=(PROXY, 40000)) as client:
        yield client


@pytest.fixture
def admin(app: TourviewsApp) -> dict[str, str]:
    return {"Authorization": f"Bearer {app.service.registry.create_token(ADMIN_ORG, True)}"}


def send(client: TestClient, address: str, tour: str = "t1", **fields: Any) -> int:
    body = orjson.dumps({"tour": tour, "visitor": str(uuid.uuid4())} | fields)
    headers = {"Content-Type": "text/plain", "X-Forwarded-For": address}
    if "origin" in fields:
        headers["Origin"] = fields.pop("origin")
        body = orjson.dumps({"tour": tour, "visitor": str(uuid.uuid4())} | fields)
    return client.post("/v1/beacon", content=body, headers=headers).status_code


def stats(client: TestClient, admin: dict[str, str], tour: str = "t1", **query: str) -> Any:
    params = "&".join(f"{k}={v}" for k, v in query.items())
    return client.get(f"/v1/tours/{tour}/stats?{params}", headers=admin).json()


def abuse(client: TestClient, admin: dict[str, str]) -> Any:
    return client.get("/v1/admin/abuse", headers=admin).json()


def test_one_ipv6_network_cannot_inflate_a_tour_nor_starve_the_people_beside_it(
    client: TestClient, admin: dict[str, str]
) -> None:
    people = [f"198.51.100.{n}" for n in range(1, 41)]
    flood = [f"{NETWORK}::{a:x}" for a in range(1, 101)]
    answers = []
    for visitor_round in range(40):  # 100 addresses, 40 visitor IDs each, people among them
        for address in flood:
            send(client, address)
        answers.append(send(client, people[visitor_round]))
    assert answers == [204] * 40
    # The network's 50 visitor IDs (its rotation allowance), and every one of the people.
    assert stats(client, admin)["totals"]["views"] == 50 + 40
    report = abuse(client, admin)["totals"]
    assert report["throttled"] + report["rotation"] == 4_000 - 50


def test_origins_are_registered_as_browsers_write_them(app: TourviewsApp) -> None:
    tour = app.service.registry.put_tour("t2", "acme", ["https://Tours.Example:443",
                                                        "http://bücher.example:8080"])  # fmt: skip
    assert tour.origins == ("http://xn--bcher-kva.example:8080", "https://tours.example")


def test_forwarded_addresses_with_ports_are_one_source(
    client: TestClient, admin: dict[str, str]
) -> None:
    for port in range(40001, 40301):  # 300 visitor IDs, each from another port
        assert send(client, f"203.0.113.9:{port}") in (204, 429)
    assert stats(client, admin)["totals"]["views"] == 50  # one source's allowance
    for port in range(40001, 40101):
        assert send(client, f"[2001:db8::9]:{port}") in (204, 429)
    assert stats(client, admin)["totals"]["views"] == 100


def test_scene_names_are_bounded_per_tour(
    client: TestClient, admin: dict[str, str], app: TourviewsApp, clock: ManualClock
) -> None:
    for n in range(3_000):  # from many addresses, within the tour's rate: no limit interferes
        address = f"10.{n // 250}.{n % 250}.1"
        assert send(client, address, event="scene", scene=f"scene-{n}") == 204
        clock.advance(timedelta(milliseconds=5))
    scenes = stats(client, admin, limit="1000")["breakdown"]["scene"]
    assert len(scenes) == app.service.settings.max_scenes == 500
    assert abuse(client, admin)["totals"]["scene_limit"] == 2_500
    assert len(stats(client, admin)["breakdown"]["scene"]) == 100  # the default limit


def test_a_tour_that_declares_its_scenes_counts_those_alone(
    client: TestClient, admin: dict[str, str], app: TourviewsApp
) -> None:
    for n, scene in enumerate(["lobby", "kitchen", "attic", "lobby"]):
        assert send(client, f"10.0.0.{n + 1}", "declared", event="scene", scene=scene) == 204
    assert send(client, "10.0.0.9", "declared", scene="attic") == 204  # a view: counted
    stored = app.service.db.cursor().execute(
        "SELECT scene FROM events WHERE tour = 'declared' AND kind = 'view'"
    )
    assert stored.fetchall() == [(None,)]  # ... without its scene
    document = stats(client, admin, "declared")
    assert {row["key"]: row["views"] for row in document["breakdown"]["scene"]} == {
        "lobby": 2, "kitchen": 1,
    }  # fmt: skip
    assert document["totals"]["views"] == 1
    assert abuse(client, admin)["totals"]["scene_limit"] == 1


def test_one_source_cannot_fill_a_tours_scene_list(
    client: TestClient, admin: dict[str, str], clock: ManualClock
) -> None:
    for n in range(200):  # one browser, within its rate limits
        assert send(client, "203.0.113.50", event="scene", scene=f"spam-{n}") == 204
        clock.advance(timedelta(seconds=1))
    assert send(client, "198.51.100.77", event="scene", scene="kitchen") == 204
    scenes = {row["key"] for row in stats(client, admin, limit="1000")["breakdown"]["scene"]}
    assert len(scenes) == 50 + 1 and "kitchen" in scenes
    assert abuse(client, admin)["totals"]["scene_limit"] == 150


def test_origin_null_is_judged_as_no_origin(client: TestClient, admin: dict[str, str]) -> None:
    assert send(client, "10.1.1.1", "locked", origin="null") == 204
    assert stats(client, admin, "locked")["totals"]["views"] == 1


def test_a_breakdown_limit_outside_its_range_answers_400(
    client: TestClient, admin: dict[str, str]
) -> None:
    for limit in ("0", "1001", "x", "-1", "²", "9" * 5_000):
        answer = client.get(f"/v1/tours/t1/stats?limit={limit}", headers=admin)
        assert answer.status_code == 400 and answer.json()["field"] == "limit"


def test_a_foreign_origin_is_acknowledged_but_not_counted(
    client: TestClient, admin: dict[str, str]
) -> None:
    assert send(client, "10.1.0.1", "locked", origin="https://evil.example") == 204
    assert send(client, "10.1.0.2", "locked", origin="https://good.example") == 204
    assert send(client, "10.1.0.3", "locked") == 204  # no Origin: judged as before
    assert stats(client, admin, "locked")["totals"]["views"] == 2
    assert abuse(client, admin)["totals"]["origin"] == 1


def test_after_a_wall_clock_step_forward_and_back_people_are_counted(
    client: TestClient, admin: dict[str, str], clock: ManualClock
) -> None:
    clock.step(timedelta(days=3))
    assert send(client, "10.2.0.1") == 204
    clock.step(timedelta(days=-3))
    answers = [send(client, f"10.2.1.{n}") for n in range(1, 21)]
    assert answers == [204] * 20
    today = clock.now().date().isoformat()
    assert stats(client, admin, **{"from": today, "to": today})["totals"]["views"] == 20


def test_views_after_a_day_was_rolled_up_early_all_appear(
    client: TestClient, admin: dict[str, str], app: TourviewsApp, clock: ManualClock
) -> None:
    day = clock.now().date().isoformat()
    for n in range(5):
        assert send(client, f"10.3.0.{n + 1}") == 204
    clock.step(timedelta(days=1))  # housekeeping runs on a clock a day ahead
    app.service.keep_house()
    clock.step(timedelta(days=-1))
    for n in range(7):
        assert send(client, f"10.3.1.{n + 1}") == 204  # acknowledged on the rolled-up day
    app.service.keep_house()  # the next round, within a minute
    assert stats(client, admin, **{"from": day, "to": day})["totals"]["views"] == 12
    clock.advance(timedelta(days=1))  # the day really ends, and is rolled up
    app.service.keep_house()
    assert stats(client, admin, **{"from": day, "to": day})["totals"]["views"] == 12


def test_a_step_ahead_longer_than_retention_deletes_no_view(
    data_dir: Any, clock: ManualClock
) -> None:
    settings = Settings(data_dir=data_dir, raw_retention_days=1,
                        trusted_proxies=Settings.proxies([f"{PROXY}/32"]))  # fmt: skip
    app = create_app(settings, clock)
    app.service.registry.put_tour("t1", "acme")
    admin = {"Authorization": f"Bearer {app.service.registry.create_token(ADMIN_ORG, True)}"}
    day = clock.now().date().isoformat()
    with TestClient(app, headers={"user-agent": CHROME}, client=(PROXY, 40000)) as client:
        for n in range(5):
            assert send(client, f"10.4.0.{n + 1}") == 204
        clock.step(timedelta(days=3))
        app.service.keep_house()  # retention by the wall clock would delete the day
        clock.step(timedelta(days=-3))
        app.service.keep_house()
        for n in range(3):
            assert send(client, f"10.4.1.{n + 1}") == 204
        assert stats(client, admin, **{"from": day, "to": day})["totals"]["views"] == 8


def test_a_wall_clock_step_destroys_no_salt_early(app: TourviewsApp, clock: ManualClock) -> None:
    salts = app.service.salts
    today = clock.now().date()
    first = salts.salt(today)
    clock.step(timedelta(days=3))
    salts.expire()
    clock.step(timedelta(days=-3))
    assert salts.salt(today) == first  # one salt for the day
    clock.advance(timedelta(hours=48))
    salts.expire()
    assert today not in salts.days()  # 48 real hours later it is gone
