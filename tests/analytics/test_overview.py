"""The organization's overview: each tour's figures agree with its own stats document."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from starlette.testclient import TestClient

from tests.conftest import send, visitor
from tourviews.analytics.rollup import roll_up_completed
from tourviews.app import TourviewsApp
from tourviews.storage.clock import ManualClock

FIGURES = ("views", "visitors", "visitors_exact", "visits", "engaged_seconds")
RANGE = {"from": "2026-11-20", "to": "2026-11-24"}  # the clock's today is 2026-11-24


def get(client: TestClient, token: str, path: str, **params: str) -> Any:
    response = client.get(path, params=params, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    return response.json()


def visit(client: TestClient, who: str, tour: str, seconds: int = 0) -> None:
    assert send(client, who, tour) == 204
    if seconds:
        assert send(client, who, tour, event="engage", seconds=seconds) == 204  # type: ignore[arg-type]


@pytest.fixture
def traffic(app: TourviewsApp, client: TestClient, clock: ManualClock) -> dict[str, str]:
    """Two tours, one in Almaty's days, visited over the last eight days (the range
    and the five days before it), with engaged seconds; a third tour never visited."""
    app.service.registry.put_tour("t2", "acme", timezone="Asia/Almaty")
    app.service.registry.put_tour("quiet", "acme")
    app.service.registry.put_tour("theirs", "other")
    loyal, once = visitor(), visitor()
    start = clock.now()
    for days_ago, who, tour, seconds in [
        (7, loyal, "t1", 40), (5, once, "t2", 15), (3, loyal, "t1", 20), (3, loyal, "t2", 0),
        (1, visitor(), "t1", 5), (0, loyal, "t1", 60), (0, visitor(), "t2", 30),
    ]:  # fmt: skip
        clock.set(start - timedelta(days=days_ago, hours=5))  # 07:00 UTC, 12:00 in Almaty
        visit(client, who, tour, seconds)
        visit(client, visitor(), "theirs", 10)
    clock.set(start)
    return {"loyal": loyal}


def overview(client: TestClient, token: str, **params: str) -> dict[str, Any]:
    document: dict[str, Any] = get(client, token, "/v1/overview", **params)
    return document


def as_in_stats(client: TestClient, token: str, tour: str) -> dict[str, Any]:
    """What the overview must say of ``tour``, from its own stats document."""
    stats = get(client, token, f"/v1/tours/{tour}/stats", **RANGE)
    return {
        "totals": {key: stats["totals"][key] for key in FIGURES},
        "previous": {key: stats["previous"][key] for key in FIGURES},
        "views_by_day": [entry["views"] for entry in stats["series"]],
    }


def test_overview_lists_each_tour_with_the_figures_of_its_stats_document(
    client: TestClient, admin_token: str, traffic: dict[str, str]
) -> None:
    token = client.app.service.registry.create_token("acme")  # type: ignore[attr-defined]
    document = overview(client, token, **RANGE)
    assert [t["tour"] for t in document["tours"]] == ["locked", "quiet", "t1", "t2"]
    assert document["previous"] == {"from": "2026-11-15", "to": "2026-11-19"}
    for entry in document["tours"]:
        expected = as_in_stats(client, token, entry["tour"])
        assert {key: entry[key] for key in expected} == expected, entry["tour"]
    t1 = next(t for t in document["tours"] if t["tour"] == "t1")
    # written out once, so that a wrong stats document would not pass for a right overview
    assert t1["totals"] == {"views": 3, "visitors": 2, "visitors_exact": True, "visits": 3,
                            "engaged_seconds": 85}  # fmt: skip
    assert t1["previous"] == {"views": 1, "visitors": 1, "visitors_exact": True, "visits": 1,
                              "engaged_seconds": 40}  # fmt: skip
    assert t1["views_by_day"] == [0, 1, 0, 1, 1]
    t2 = next(t for t in document["tours"] if t["tour"] == "t2")
    assert (t2["timezone"], t2["totals"]["views"], t2["totals"]["engaged_seconds"]) == (
        "Asia/Almaty", 2, 30)  # fmt: skip
    assert t2["previous"]["engaged_seconds"] == 15


def test_overview_reads_the_same_once_the_days_are_rolled_up(
    app: TourviewsApp, client: TestClient, admin_token: str, clock: ManualClock,
    traffic: dict[str, str],
) -> None:  # fmt: skip
    before = overview(client, admin_token, **RANGE)
    assert roll_up_completed(app.service.db.cursor(), clock.now().date())
    assert overview(client, admin_token, **RANGE) == before
    assert (
        sum(t["totals"]["views"] for t in before["tours"]) == 3 + 2 + 5
    )  # "theirs" too: the admin sees every tour


def test_a_visit_across_local_midnight_counts_its_seconds_up_to_the_periods_end(
    app: TourviewsApp, client: TestClient, admin_token: str, clock: ManualClock
) -> None:
    app.service.registry.put_tour("t2", "acme", timezone="Asia/Almaty")
    now = clock.now()
    who = visitor()
    clock.set(now.replace(day=23, hour=18, minute=50))  # 23:50 in Almaty
    visit(client, who, "t2", 30)
    clock.advance(timedelta(minutes=15))  # 00:05 the next day there: the same visit
    assert send(client, who, "t2", event="engage", seconds=20) == 204  # type: ignore[arg-type]
    clock.set(now)

    def figures(first: str, last: str) -> tuple[int, int, list[int]]:
        found = overview(client, admin_token, **{"from": first, "to": last})["tours"]
        t2 = next(t for t in found if t["tour"] == "t2")
        return t2["totals"]["visits"], t2["totals"]["engaged_seconds"], t2["views_by_day"]

    assert figures("2026-11-23", "2026-11-23") == (1, 30, [1])
    assert figures("2026-11-23", "2026-11-24") == (1, 50, [1, 0])
    assert figures("2026-11-24", "2026-11-24") == (0, 0, [0])
    stats = get(
        client, admin_token, "/v1/tours/t2/stats", **{"from": "2026-11-23", "to": "2026-11-23"}
    )
    assert stats["totals"]["engaged_seconds"] == 30


def test_a_token_for_one_tour_sees_that_tour_alone_in_the_overview(
    app: TourviewsApp, client: TestClient, traffic: dict[str, str]
) -> None:
    token = app.service.registry.create_token("acme", tour="t2")
    document = overview(client, token, **RANGE)
    assert [(t["tour"], t["totals"]["views"]) for t in document["tours"]] == [("t2", 2)]


def test_an_overview_of_bad_days_answers_400_naming_the_field(
    client: TestClient, admin_token: str
) -> None:
    response = client.get(
        "/v1/overview", params={"from": "2026-13-01"},
        headers={"Authorization": f"Bearer {admin_token}"},
    )  # fmt: skip
    assert (response.status_code, response.json()["field"]) == (400, "from")
    assert client.get("/v1/overview").status_code == 401
