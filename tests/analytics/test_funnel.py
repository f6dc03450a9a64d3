"""Funnels over scripted visits: steps in order within one visit, through the real API."""

from __future__ import annotations

import random
import subprocess
import sys
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from starlette.testclient import TestClient

from tests.conftest import CHROME, StartServer, view, visitor
from tourviews.app import TourviewsApp
from tourviews.storage.clock import ManualClock

Script = Sequence[tuple[float, str, dict[str, str]]]  # (minutes after the start, visitor, beacon)


def play(client: TestClient, clock: ManualClock, start: datetime, script: Script) -> None:
    """Send each beacon of ``script`` at its time, in the order of time."""
    for minutes, who, fields in sorted(script, key=lambda entry: entry[0]):
        clock.set(start + timedelta(minutes=minutes))
        view(client, who, **fields)


def funnel(client: TestClient, token: str, steps: list[str], **params: str) -> Any:
    response = client.get(
        "/v1/tours/t1/funnel",
        params=[("step", step) for step in steps] + list(params.items()),
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 200, response.text
    return response.json()


def counts(document: Any) -> list[int]:
    return [step["visits"] for step in document["steps"]]


def scene(name: str) -> dict[str, str]:
    return {"event": "scene", "scene": name}


def action(name: str) -> dict[str, str]:
    return {"event": "action", "name": name}


VIEW: dict[str, str] = {}  # a view beacon: the fields it needs are the tour and visitor
NOON = datetime.fromisoformat("2026-11-24T12:00:00+00:00")  # the clock fixture's start


@pytest.fixture
def one_afternoon(client: TestClient, clock: ManualClock) -> None:
    """Four visitors, five visits: in order, out of order, split by a pause twice."""
    ordered, reversed_, paused, strayed = (visitor() for _ in range(4))
    play(client, clock, NOON, [
        (0, ordered, {"scene": "lobby"}), (1, ordered, scene("kitchen")),
        (2, ordered, action("lead-form")),
        # the action before the scene: reaches the kitchen, not the form after it
        (0.5, reversed_, VIEW), (1.5, reversed_, action("lead-form")),
        (2.5, reversed_, scene("kitchen")),
        # two visits: the kitchen in the first, the form in the second (a new view)
        (3, paused, VIEW), (4, paused, scene("kitchen")), (45, paused, VIEW),
        (46, paused, action("lead-form")),
        # after a pause without a view, the kitchen belongs to no visit
        (5, strayed, VIEW), (50, strayed, scene("kitchen")),
    ])  # fmt: skip


def test_each_step_counts_the_visits_that_took_it_after_the_steps_before(
    client: TestClient, admin_token: str, one_afternoon: None
) -> None:
    document = funnel(
        client, admin_token, ["view", "scene:kitchen", "action:lead-form"], to="2026-11-24"
    )
    assert document["steps"] == [
        {"step": "view", "visits": 5},
        {"step": "scene:kitchen", "visits": 3},
        {"step": "action:lead-form", "visits": 1},
    ]
    assert (document["from"], document["to"], document["timezone"]) == (
        "2026-10-26", "2026-11-24", "UTC"
    )  # fmt: skip


def test_a_funnel_need_not_begin_with_the_view(
    client: TestClient, admin_token: str, one_afternoon: None
) -> None:
    assert counts(funnel(client, admin_token, ["scene:kitchen", "action:lead-form"])) == [3, 1]
    assert counts(funnel(client, admin_token, ["action:lead-form"])) == [3]
    assert counts(funnel(client, admin_token, ["action:lead-form", "scene:kitchen"])) == [3, 1]


def test_a_step_taken_twice_needs_two_times_in_order(
    client: TestClient, clock: ManualClock, admin_token: str
) -> None:
    once, twice = visitor(), visitor()
    play(client, clock, NOON, [
        (0, once, {"scene": "lobby"}), (1, once, scene("kitchen")),
        (0, twice, {"scene": "lobby"}), (1, twice, scene("kitchen")),
        (2, twice, scene("lobby")),
    ])  # fmt: skip
    steps = ["scene:lobby", "scene:kitchen", "scene:lobby"]
    assert counts(funnel(client, admin_token, steps)) == [2, 2, 1]


def test_a_visit_ends_at_utc_midnight_for_the_funnel(
    client: TestClient, clock: ManualClock, admin_token: str
) -> None:
    late, early = visitor(), visitor()
    evening = datetime.fromisoformat("2026-11-24T23:50:00+00:00")
    play(client, clock, evening, [
        (0, late, VIEW), (15, late, scene("kitchen")),  # 00:05: after the visit's midnight
        (20, early, VIEW), (21, early, scene("kitchen")),
    ])  # fmt: skip
    steps = ["view", "scene:kitchen"]
    both = {"from": "2026-11-24", "to": "2026-11-25"}
    assert counts(funnel(client, admin_token, steps, **both)) == [2, 1]
    first = {"from": "2026-11-24", "to": "2026-11-24"}
    assert counts(funnel(client, admin_token, steps, **first)) == [1, 0]
    second = {"from": "2026-11-25", "to": "2026-11-25"}
    assert counts(funnel(client, admin_token, steps, **second)) == [1, 1]


def test_visits_count_in_the_days_of_the_tours_time_zone(
    client: TestClient, clock: ManualClock, admin_token: str
) -> None:
    someone = visitor()
    # 20:00 UTC is the next day in Asia/Almaty (UTC+5)
    evening = datetime.fromisoformat("2026-11-24T20:00:00+00:00")
    play(client, clock, evening, [(0, someone, VIEW), (1, someone, scene("kitchen"))])
    steps = ["view", "scene:kitchen"]
    local = {"from": "2026-11-25", "to": "2026-11-25", "tz": "Asia/Almaty"}
    assert counts(funnel(client, admin_token, steps, **local)) == [1, 1]
    local["from"] = local["to"] = "2026-11-24"
    assert counts(funnel(client, admin_token, steps, **local)) == [0, 0]


def reached(script: Script, steps: list[str]) -> list[int]:
    """The funnel by brute force: each visitor's beacons deduplicated (a view, or a scene
    event of the same scene, within 30 minutes of the last counted one), cut into visits
    by the rules (a view begins one; a pause over 30 minutes or a UTC midnight ends it;
    beacons outside one belong to none), and each visit's steps matched greedily."""
    window = timedelta(minutes=30)
    found = [0] * len(steps)
    for who in {entry[1] for entry in script}:
        counted: dict[str, datetime] = {}  # dedup key -> last counted
        visits: list[list[str]] = []
        last: datetime | None = None  # the last stored beacon
        inside = False
        mine = [(m, fields) for m, person, fields in script if person == who]
        for minutes, fields in sorted(mine, key=lambda entry: entry[0]):
            at = NOON + timedelta(minutes=minutes)
            kind = fields.get("event", "view")
            key = "" if kind == "view" else fields.get("scene", "") if kind == "scene" else None
            if key is not None and key in counted and at - counted[key] < window:
                continue  # a duplicate: not stored
            if last is not None and (at - last > window or at.date() != last.date()):
                inside = False
            if kind == "view":
                visits.append(["view", *(f"scene:{fields[k]}" for k in ["scene"] if k in fields)])
                inside = True
            elif inside:
                visits[-1].append(f"{kind}:{fields.get('scene') or fields.get('name')}")
            elif kind == "action":
                continue  # outside a visit: not stored
            if key is not None:
                counted[key] = at
            last = at
        for taken in visits:
            at_step = 0
            for step in taken:
                if at_step < len(steps) and step == steps[at_step]:
                    found[at_step] += 1
                    at_step += 1
    return found


def test_random_visits_give_the_funnel_a_brute_force_recount_gives(
    client: TestClient, clock: ManualClock, admin_token: str
) -> None:
    chance = random.Random(27)
    script: list[tuple[float, str, dict[str, str]]] = []
    names = [scene("lobby"), scene("kitchen"), scene("garden"), action("lead-form")]
    for who in (visitor() for _ in range(12)):
        at = chance.uniform(0, 60)
        script.append((at, who, VIEW))
        for _ in range(chance.randint(0, 6)):
            at += chance.choice([0.5, 1, 2, 5])
            script.append((at, who, chance.choice(names)))
        if chance.random() < 0.5:  # a second visit, after a pause
            at += 40
            script.append((at, who, VIEW))
            for _ in range(chance.randint(0, 3)):
                at += 1
                script.append((at, who, chance.choice(names)))
    play(client, clock, NOON, script)
    for steps in (
        ["view", "scene:kitchen", "action:lead-form"],
        ["scene:lobby", "scene:garden", "scene:kitchen"],
        ["action:lead-form", "scene:kitchen"],
    ):
        expected = reached(script, steps)
        assert counts(funnel(client, admin_token, steps)) == expected
        assert expected[-1] > 0  # the script reaches every funnel's end: the test can fail


@pytest.mark.parametrize(
    "steps",
    [[], ["scene:kitchen", "view"], ["goal:kitchen"], ["scene:"], ["scene:a b"],
     ["action:" + "x" * 65], ["scene:kitchen"] * 11],
)  # fmt: skip
def test_a_bad_step_answers_400_naming_step(
    client: TestClient, admin_token: str, steps: list[str]
) -> None:
    response = client.get(
        "/v1/tours/t1/funnel",
        params=[("step", step) for step in steps],
        headers={"Authorization": f"Bearer {admin_token}"},
    )
    assert response.status_code == 400
    assert response.json()["field"] == "step"


def test_another_organizations_tour_has_no_funnel(client: TestClient, app: TourviewsApp) -> None:
    token = app.service.registry.create_token("other")
    response = client.get(
        "/v1/tours/t1/funnel?step=view", headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 404
    assert response.json() == {"error": "unknown tour", "field": "tour"}


def test_a_funnel_reaching_past_raw_retention_answers_400_naming_from(
    client: TestClient, clock: ManualClock, admin_token: str
) -> None:
    someone = visitor()
    clock.advance(timedelta(days=-40))
    view(client, someone, scene="kitchen")
    clock.advance(timedelta(days=40))
    view(client, someone, scene="kitchen")
    auth = {"Authorization": f"Bearer {admin_token}"}
    assert client.post("/v1/admin/purge", headers=auth).json() == {"deleted": 1}
    response = client.get(
        "/v1/tours/t1/funnel?step=view&from=2026-10-20&to=2026-11-24", headers=auth
    )
    assert response.status_code == 400
    assert response.json()["field"] == "from"
    assert "2026-10-25" in response.json()["error"]  # where the raw events begin
    # from the first day whose raw events are all kept: exact
    kept = funnel(client, admin_token, ["view", "scene:kitchen"], **{"from": "2026-10-25"})
    assert counts(kept) == [1, 1]


def cli(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "tourviews", *args, "--data", str(data_dir)]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def test_the_command_answers_the_funnel_through_the_server_and_on_the_file(
    start: StartServer, data_dir: Path
) -> None:
    assert cli(data_dir, "tours", "add", "t1", "--org", "acme").returncode == 0
    server = start(data_dir)
    # one beacon a visit: a view entering the kitchen, at any time of day
    with httpx.Client(base_url=server.url, headers={"User-Agent": CHROME}) as http:
        for who, where in ((visitor(), "kitchen"), (visitor(), "kitchen"), (visitor(), "lobby")):
            body = orjson.dumps({"tour": "t1", "visitor": who, "scene": where})
            answer = http.post("/v1/beacon", content=body, headers={"Content-Type": "text/plain"})
            assert answer.status_code == 204
    asked = ("funnel", "t1", "--step", "view", "--step", "scene:kitchen", "--format", "json")
    remote = cli(data_dir, *asked)
    assert remote.returncode == 0, remote.stderr
    assert counts(orjson.loads(remote.stdout)) == [3, 2]
    table = cli(data_dir, "funnel", "t1", "--step", "view", "--step", "scene:kitchen")
    assert [line.split()[:2] for line in table.stdout.splitlines()[-2:]] == [
        ["view", "3"], ["scene:kitchen", "2"]
    ]  # fmt: skip
    assert server.terminate() == 0
    local = cli(data_dir, *asked)
    assert local.returncode == 0, local.stderr
    assert orjson.loads(local.stdout) == orjson.loads(remote.stdout)
    wrong = cli(data_dir, "funnel", "t1", "--step", "scene:kitchen", "--step", "view")
    assert wrong.returncode == 1
    assert wrong.stderr.startswith("tourviews: error: --step: view can only be the first step")
    assert len(wrong.stderr.splitlines()) == 1
