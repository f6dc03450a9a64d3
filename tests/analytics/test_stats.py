"""The stats document on known traffic: shape, arithmetic, exact uniques, authorization."""

from __future__ import annotations

from datetime import timedelta

import orjson
import pytest
from starlette.testclient import TestClient

from tests.conftest import view, visitor
from tourviews.app import TourviewsApp
from tourviews.storage.clock import ManualClock

IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1"
)


def stats(client: TestClient, token: str, **params: str) -> dict[str, object]:
    response = client.get(
        "/v1/tours/t1/stats", params=params, headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 200, response.text
    document: dict[str, object] = response.json()
    return document


@pytest.fixture
def traffic(client: TestClient, clock: ManualClock) -> dict[str, str]:
    """One visitor on three days, two more on the last day (one on an iPhone), a scene."""
    loyal, second, phone = visitor(), visitor(), visitor()
    clock.advance(timedelta(days=-2))
    view(client, loyal)
    clock.advance(timedelta(days=1))
    view(client, loyal)
    clock.advance(timedelta(days=1))
    view(client, loyal)
    view(client, second)
    view(client, phone, IPHONE)
    view(client, phone, IPHONE, event="scene", scene="lobby")
    return {"loyal": loyal}


def test_one_visitor_on_three_days_is_one_visitor(
    client: TestClient, admin_token: str, traffic: dict[str, str]
) -> None:
    document = stats(client, admin_token, **{"from": "2026-11-22", "to": "2026-11-24"})
    assert document["totals"].items() >= {"views": 5, "visitors": 3, "visitors_exact": True}.items()
    series = document["series"]
    assert isinstance(series, list)
    assert [(e["views"], e["visitors"]) for e in series] == [(1, 1), (1, 1), (3, 3)]
    assert sum(e["visitors"] for e in series) == 5  # the sum of daily uniques is not the answer


def test_series_sums_to_the_totals_and_breakdowns_add_up(
    client: TestClient, admin_token: str, traffic: dict[str, str]
) -> None:
    document = stats(client, admin_token, **{"from": "2026-11-01", "to": "2026-11-30"})
    totals = document["totals"]
    assert isinstance(totals, dict)
    series = document["series"]
    assert isinstance(series, list) and len(series) == 30
    assert sum(e["views"] for e in series) == totals["views"]
    breakdown = document["breakdown"]
    assert isinstance(breakdown, dict)
    for dimension in ("device", "browser", "os"):
        assert sum(e["views"] for e in breakdown[dimension]) == totals["views"]
    assert {e["key"]: e["views"] for e in breakdown["device"]} == {"desktop": 4, "mobile": 1}
    assert breakdown["scene"] == [{"key": "lobby", "views": 1, "visitors": 1, "engaged_seconds": 0}]


def test_hourly_series_has_one_entry_per_hour_zeros_included(
    client: TestClient, admin_token: str, traffic: dict[str, str]
) -> None:
    document = stats(
        client, admin_token, **{"from": "2026-11-24", "to": "2026-11-24", "interval": "hour"}
    )
    series = document["series"]
    assert isinstance(series, list) and len(series) == 24
    assert series[0]["start"] == "2026-11-24T00:00:00Z"
    assert [e["views"] for e in series if e["views"]] == [3]
    assert series[12]["views"] == 3


def test_default_range_is_the_last_30_days_up_to_today(
    client: TestClient, admin_token: str
) -> None:
    document = stats(client, admin_token)
    assert (document["from"], document["to"]) == ("2026-10-26", "2026-11-24")


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"from": "2026-13-01"}, "from"),
        ({"to": "yesterday"}, "to"),
        ({"from": "2026-11-10", "to": "2026-11-01"}, "from"),
        ({"from": "2025-01-01", "to": "2026-11-24"}, "to"),
        ({"interval": "week"}, "interval"),
    ],
)
def test_bad_range_answers_400_naming_the_parameter(
    client: TestClient, admin_token: str, params: dict[str, str], field: str
) -> None:
    response = client.get(
        "/v1/tours/t1/stats", params=params, headers={"Authorization": f"Bearer {admin_token}"}
    )
    assert response.status_code == 400
    assert response.json()["field"] == field


def test_owner_reads_own_tour_and_not_another_organizations(
    app: TourviewsApp, client: TestClient
) -> None:
    app.service.registry.put_tour("rival", "globex")
    acme = app.service.registry.create_token("acme")
    ok = client.get("/v1/tours/t1/stats", headers={"Authorization": f"Bearer {acme}"})
    assert ok.status_code == 200
    other = client.get("/v1/tours/rival/stats", headers={"Authorization": f"Bearer {acme}"})
    missing = client.get("/v1/tours/nosuch/stats", headers={"Authorization": f"Bearer {acme}"})
    assert other.status_code == missing.status_code == 404
    assert other.json() == missing.json()


@pytest.mark.parametrize("header", [None, "Bearer nope", "Bearer tv_forged", "Basic abc"])
def test_no_or_bad_token_answers_401(client: TestClient, header: str | None) -> None:
    headers = {"Authorization": header} if header else {}
    response = client.get("/v1/tours/t1/stats", headers=headers)
    assert response.status_code == 401
    assert "token" in response.json()["error"]


def test_admin_routes_refuse_an_organization_token_with_403(
    app: TourviewsApp, client: TestClient
) -> None:
    acme = app.service.registry.create_token("acme")
    response = client.put(
        "/v1/admin/tours/t9", json={"org": "acme"}, headers={"Authorization": f"Bearer {acme}"}
    )
    assert response.status_code == 403


def test_admin_registers_a_tour_that_takes_beacons_at_once(
    client: TestClient, admin_token: str
) -> None:
    auth = {"Authorization": f"Bearer {admin_token}"}
    response = client.put("/v1/admin/tours/fresh", json={"org": "acme"}, headers=auth)
    assert response.json() == {
        "tour": "fresh",
        "org": "acme",
        "origins": [],
        "scenes": None,
        "public_counter": False,
        "timezone": "UTC",
        "goals": [],
    }
    body = orjson.dumps({"tour": "fresh", "visitor": visitor()})
    assert (
        client.post("/v1/beacon", content=body, headers={"Content-Type": "text/plain"}).status_code
        == 204
    )


def test_admin_tour_body_errors_name_the_field(client: TestClient, admin_token: str) -> None:
    auth = {"Authorization": f"Bearer {admin_token}"}
    bad_origin = client.put(
        "/v1/admin/tours/x", json={"org": "acme", "origins": ["nope"]}, headers=auth
    )
    assert (bad_origin.status_code, bad_origin.json()["field"]) == (400, "origins")
    no_org = client.put("/v1/admin/tours/x", json={}, headers=auth)
    assert (no_org.status_code, no_org.json()["field"]) == (400, "org")
    bad_name = client.put("/v1/admin/tours/bad%20name", json={"org": "acme"}, headers=auth)
    assert (bad_name.status_code, bad_name.json()["field"]) == (400, "tour")
