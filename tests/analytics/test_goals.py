"""Goals: each tour's, with the visits that reached them, their previous, past retention."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from tests.analytics.test_retention import stats
from tests.conftest import view, visitor
from tourviews.analytics.rollup import complete_before, roll_up_completed
from tourviews.app import TourviewsApp
from tourviews.storage.clock import ManualClock
from tourviews.storage.database import SCHEMA
from tourviews.storage.migrations import LATEST, migrate

GOALS = ["action:lead-form", "scene:kitchen"]


def put_goals(client: TestClient, token: str, goals: Any) -> Any:
    return client.put(
        "/v1/admin/tours/t1",
        json={"org": "acme", "goals": goals},
        headers={"Authorization": f"Bearer {token}"},
    )


def reached(document: Any) -> dict[str, int]:
    return {goal["goal"]: goal["visits"] for goal in document["goals"]}


def visit(client: TestClient, clock: ManualClock, *steps: dict[str, str]) -> None:
    """One visit of a new visitor: a view, then ``steps`` a minute apart."""
    who = visitor()
    view(client, who)
    for fields in steps:
        clock.advance(timedelta(minutes=1))
        view(client, who, **fields)


KITCHEN = {"event": "scene", "scene": "kitchen"}
FORM = {"event": "action", "name": "lead-form"}


def test_each_goal_counts_the_visits_that_reached_it_and_their_share(
    client: TestClient, clock: ManualClock, admin_token: str
) -> None:
    assert put_goals(client, admin_token, GOALS).json()["goals"] == GOALS
    visit(client, clock, KITCHEN, FORM, FORM)  # reached both, the form twice: one visit
    visit(client, clock, KITCHEN)
    visit(client, clock)
    visit(client, clock, {"event": "scene", "scene": "lobby"})
    someone = visitor()  # two visits, split by a pause: the kitchen in the second alone
    view(client, someone)
    clock.advance(timedelta(minutes=45))
    view(client, someone)
    view(client, someone, **KITCHEN)
    document = stats(client, admin_token, "2026-11-24", "2026-11-24")
    assert document["totals"]["visits"] == 6
    assert document["goals"] == [
        {"goal": "action:lead-form", "visits": 1, "rate": round(1 / 6, 4)},
        {"goal": "scene:kitchen", "visits": 3, "rate": 0.5},
    ]


def test_a_scene_entered_with_the_view_reaches_its_goal(
    client: TestClient, admin_token: str
) -> None:
    put_goals(client, admin_token, ["scene:kitchen"])
    view(client, visitor(), scene="kitchen")
    assert reached(stats(client, admin_token, "2026-11-24", "2026-11-24")) == {"scene:kitchen": 1}


def test_goals_come_with_those_of_the_previous_period(
    client: TestClient, clock: ManualClock, admin_token: str
) -> None:
    put_goals(client, admin_token, GOALS)
    clock.advance(timedelta(days=-7))
    for _ in range(4):
        visit(client, clock, KITCHEN)
    clock.advance(timedelta(days=7))
    visit(client, clock, KITCHEN, FORM)
    document = stats(client, admin_token, "2026-11-18", "2026-11-24")
    assert document["goals"] == [
        {"goal": "action:lead-form", "visits": 1, "rate": 1.0},
        {"goal": "scene:kitchen", "visits": 1, "rate": 1.0},
    ]
    assert document["previous"]["goals"] == [
        {"goal": "action:lead-form", "visits": 0, "rate": 0.0},
        {"goal": "scene:kitchen", "visits": 4, "rate": 1.0},
    ]
    assert (document["previous"]["from"], document["previous"]["to"]) == (
        "2026-11-11", "2026-11-17"
    )  # fmt: skip


def test_goals_past_raw_retention_come_from_the_rollups(
    client: TestClient, clock: ManualClock, admin_token: str
) -> None:
    put_goals(client, admin_token, ["scene:kitchen"])
    clock.advance(timedelta(days=-39))
    for day in range(40):  # two visits a day, the kitchen in one of them, a form every 4th
        visit(client, clock, KITCHEN, *([FORM] if day % 4 == 0 else []))
        visit(client, clock)
        clock.advance(timedelta(days=1))
    clock.advance(timedelta(days=-1))  # 2026-11-24
    before = stats(client, admin_token, "2026-10-16", "2026-11-24")
    auth = {"Authorization": f"Bearer {admin_token}"}
    assert client.post("/v1/admin/purge", headers=auth).json()["deleted"] > 0
    after = stats(client, admin_token, "2026-10-16", "2026-11-24")
    assert (
        after["goals"] == before["goals"] == [{"goal": "scene:kitchen", "visits": 40, "rate": 0.5}]
    )
    purged_days = stats(client, admin_token, "2026-10-16", "2026-10-23")
    assert purged_days["goals"] == [{"goal": "scene:kitchen", "visits": 8, "rate": 0.5}]
    # a goal added after the purge: the rollups kept every scene and action reached
    put_goals(client, admin_token, ["scene:kitchen", "action:lead-form"])
    later = stats(client, admin_token, "2026-10-16", "2026-11-24")
    assert reached(later) == {"scene:kitchen": 40, "action:lead-form": 10}
    assert reached(stats(client, admin_token, "2026-10-16", "2026-10-23")) == {
        "scene:kitchen": 8, "action:lead-form": 2
    }  # fmt: skip


def test_goals_are_kept_unless_given_and_listed_with_the_tour(
    client: TestClient, admin_token: str
) -> None:
    put_goals(client, admin_token, GOALS)
    auth = {"Authorization": f"Bearer {admin_token}"}
    client.put("/v1/admin/tours/t1", json={"org": "acme", "timezone": "Asia/Almaty"}, headers=auth)
    listed = {t["tour"]: t for t in client.get("/v1/admin/tours", headers=auth).json()}
    assert listed["t1"]["goals"] == GOALS
    assert put_goals(client, admin_token, []).json()["goals"] == []
    assert stats(client, admin_token, "2026-11-24", "2026-11-24")["goals"] == []


@pytest.mark.parametrize(
    "goals",
    [["view"], ["lead-form"], ["action:"], ["scene:a b"], ["page:x"], [3], "scene:kitchen",
     [f"scene:s{n}" for n in range(21)]],
)  # fmt: skip
def test_a_bad_goal_answers_400_naming_goals_and_changes_nothing(
    client: TestClient, admin_token: str, goals: Any
) -> None:
    put_goals(client, admin_token, GOALS)
    response = put_goals(client, admin_token, goals)
    assert response.status_code == 400
    assert response.json()["field"].split(".")[0] == "goals"
    auth = {"Authorization": f"Bearer {admin_token}"}
    listed = {t["tour"]: t for t in client.get("/v1/admin/tours", headers=auth).json()}
    assert listed["t1"]["goals"] == GOALS


def cli(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "tourviews", *args, "--data", str(data_dir)]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def test_the_command_sets_lists_and_clears_goals_and_refuses_a_bad_one(data_dir: Path) -> None:
    added = cli(data_dir, "tours", "add", "t1", "--org", "acme", "--goal", "action:lead-form",
                "--goal", "scene:floor-plan")  # fmt: skip
    assert added.returncode == 0, added.stderr
    listed = cli(data_dir, "tours", "list").stdout
    assert "goals: action:lead-form scene:floor-plan" in listed
    kept = cli(data_dir, "tours", "add", "t1", "--org", "acme", "--timezone", "Asia/Almaty")
    assert kept.returncode == 0
    assert "goals: action:lead-form scene:floor-plan" in cli(data_dir, "tours", "list").stdout
    wrong = cli(data_dir, "tours", "add", "t1", "--org", "acme", "--goal", "view")
    assert wrong.returncode == 1
    assert wrong.stderr.startswith("tourviews: error: --goal: a goal is scene:NAME or action:NAME")
    assert len(wrong.stderr.splitlines()) == 1
    cleared = cli(data_dir, "tours", "add", "t1", "--org", "acme", "--no-goals")
    assert cleared.returncode == 0
    assert "goals" not in cli(data_dir, "tours", "list").stdout


def test_an_upgraded_file_rolls_its_kept_days_up_again_to_answer_goals(
    app: TourviewsApp, client: TestClient, clock: ManualClock, admin_token: str
) -> None:
    clock.advance(timedelta(days=-3))
    visit(client, clock, KITCHEN)
    visit(client, clock)
    clock.advance(timedelta(days=3))
    cursor = app.service.db.cursor()
    roll_up_completed(cursor, complete_before(clock.now()))
    # the file as a tourviews before goals left it: no goals, no rows of goals reached
    cursor.execute("DELETE FROM rollups WHERE dimension = 'reached'")
    cursor.execute("ALTER TABLE tours DROP COLUMN goals")
    cursor.execute("UPDATE meta SET value = '2' WHERE key = 'schema_version'")
    assert migrate(cursor, SCHEMA, Path("upgraded")) == list(range(3, LATEST + 1))
    app.service.registry.reload()
    put_goals(client, admin_token, ["scene:kitchen"])
    day = stats(client, admin_token, "2026-11-21", "2026-11-21")
    assert day["goals"] == [{"goal": "scene:kitchen", "visits": 1, "rate": 0.5}]
    app.service.keep_house()  # rolls the day up again, with its goals reached
    kept = cursor.execute(
        "SELECT key, views FROM rollups WHERE dimension = 'reached' AND day = '2026-11-21'"
    ).fetchall()
    assert kept == [("scene:kitchen", 1)]
