"""Broken object-level authorization: no owner endpoint ever reads another organization's tour."""

from __future__ import annotations

import itertools

import orjson
import pytest
from starlette.testclient import TestClient

from tests.conftest import visitor
from tourviews.app import TourviewsApp

ORGS = {"north": ["n1", "n2"], "south": ["s1"]}
OWNER_READS = [
    "/v1/tours/{tour}/stats",
    "/v1/tours/{tour}/stats?format=csv",
    "/v1/tours/{tour}/stats?interval=hour&from=2026-11-24&to=2026-11-24",
]


@pytest.fixture
def tokens(app: TourviewsApp, client: TestClient) -> dict[str, str]:
    for org, tours in ORGS.items():
        for tour in tours:
            app.service.registry.put_tour(tour, org)
            body = orjson.dumps({"tour": tour, "visitor": visitor()})
            client.post("/v1/beacon", content=body, headers={"Content-Type": "text/plain"})
    return {org: app.service.registry.create_token(org) for org in ORGS}


def get(client: TestClient, path: str, token: str) -> tuple[int, bytes]:
    response = client.get(path, headers={"Authorization": f"Bearer {token}"})
    return response.status_code, response.content


@pytest.mark.parametrize(("org", "other"), list(itertools.permutations(ORGS, 2)))
def test_no_owner_endpoint_reads_another_organizations_tour(
    client: TestClient, tokens: dict[str, str], org: str, other: str
) -> None:
    missing = {
        path: get(client, path.format(tour="nosuchtour"), tokens[org]) for path in OWNER_READS
    }
    for tour, path in itertools.product(ORGS[other], OWNER_READS):
        # Exactly the answer of a tour that does not exist: nothing tells them apart.
        assert get(client, path.format(tour=tour), tokens[org]) == missing[path]
        assert missing[path][0] == 404
    for tour, path in itertools.product(ORGS[org], OWNER_READS):
        assert get(client, path.format(tour=tour), tokens[org])[0] == 200


def test_tour_list_shows_only_the_organizations_own_tours(
    client: TestClient, tokens: dict[str, str]
) -> None:
    for org, tours in ORGS.items():
        status, body = get(client, "/v1/tours", tokens[org])
        listing = orjson.loads(body)
        assert status == 200
        assert [entry["tour"] for entry in listing["tours"]] == sorted(tours)
        assert all(entry["org"] == org for entry in listing["tours"])
        assert all(entry["totals"]["views"] == 1 for entry in listing["tours"])


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("PUT", "/v1/admin/tours/x"),
        ("DELETE", "/v1/admin/tours/n1"),
        ("GET", "/v1/admin/tours"),
        ("POST", "/v1/admin/tokens"),
        ("GET", "/v1/admin/abuse"),
        ("DELETE", f"/v1/admin/visitors/{visitor()}"),
        ("POST", "/v1/admin/purge"),
    ],
)
def test_operator_endpoints_answer_403_to_owners_and_401_to_strangers(
    client: TestClient, tokens: dict[str, str], method: str, path: str
) -> None:
    body = {"org": "acme"}
    owner = client.request(
        method, path, json=body, headers={"Authorization": f"Bearer {tokens['north']}"}
    )
    assert owner.status_code == 403
    assert client.request(method, path, json=body).status_code == 401


def test_stats_as_csv_is_the_series(client: TestClient, tokens: dict[str, str]) -> None:
    response = client.get(
        "/v1/tours/n1/stats",
        params={"from": "2026-11-23", "to": "2026-11-24", "format": "csv"},
        headers={"Authorization": f"Bearer {tokens['north']}"},
    )
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    assert response.text.splitlines() == [
        "start,views,visitors,visits,engaged_seconds",
        "2026-11-23T00:00:00Z,0,0,0,0",
        "2026-11-24T00:00:00Z,1,1,1,0",
    ]


def test_unknown_format_is_refused_naming_the_parameter(
    client: TestClient, tokens: dict[str, str]
) -> None:
    status, body = get(client, "/v1/tours/n1/stats?format=xml", tokens["north"])
    assert status == 400
    assert orjson.loads(body)["field"] == "format"
