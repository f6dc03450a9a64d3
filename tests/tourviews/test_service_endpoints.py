"""/metrics, /healthz and the OpenAPI document."""

from __future__ import annotations

import re

import orjson
from starlette.testclient import TestClient

from tests.conftest import visitor
from tourviews.app import TourviewsApp


def metric(text: str, name: str) -> float:
    found = re.search(rf"^{re.escape(name)} (\S+)$", text, re.MULTILINE)
    assert found, name
    return float(found.group(1))


def test_metrics_count_beacons_by_outcome_and_commits(client: TestClient, admin_token: str) -> None:
    same = orjson.dumps({"tour": "t1", "visitor": visitor()})
    for body in (same, same, b"{"):
        client.post("/v1/beacon", content=body, headers={"Content-Type": "text/plain"})
    response = client.get("/metrics", headers={"Authorization": f"Bearer {admin_token}"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert metric(text, 'tourviews_beacons_total{outcome="counted"}') == 1
    assert metric(text, 'tourviews_beacons_total{outcome="duplicate"}') == 1
    assert metric(text, 'tourviews_beacons_total{outcome="invalid"}') == 1
    assert metric(text, "tourviews_commit_batch_size_count") >= 2
    assert metric(text, "tourviews_commit_seconds_count") >= 2
    assert metric(text, "tourviews_queue_depth") == 0
    assert metric(text, "tourviews_uptime_seconds") >= 0


def test_metrics_show_no_outcomes_without_the_admin_token(
    client: TestClient, app: TourviewsApp
) -> None:
    # Beacon by beacon, the outcome counters would tell a sender how it was classified.
    client.post("/v1/beacon", content=orjson.dumps({"tour": "t1", "visitor": visitor()}),
                headers={"Content-Type": "text/plain"})  # fmt: skip
    owner = app.service.registry.create_token("acme")
    for headers, status in (({}, 401), ({"Authorization": f"Bearer {owner}"}, 403)):
        response = client.get("/metrics", headers=headers)
        assert response.status_code == status
        assert "tourviews_beacons_total" not in response.text
    assert client.get("/healthz").status_code == 200  # stays public


def test_openapi_describes_every_route_with_its_error_answers(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    paths = document["paths"]
    for path in (
        "/v1/beacon", "/v1/tours", "/v1/tours/{tour}/stats", "/v1/admin/tours/{tour}",
        "/v1/admin/tokens", "/v1/admin/abuse", "/v1/admin/visitors/{visitor}", "/v1/admin/purge",
        "/healthz", "/metrics",
    ):  # fmt: skip
        assert path in paths, path
    beacon = paths["/v1/beacon"]["post"]["responses"]
    assert {"204", "400", "404", "413", "415", "429", "503"} <= set(beacon)
    stats = paths["/v1/tours/{tour}/stats"]["get"]["responses"]
    assert {"200", "400", "401", "404"} <= set(stats)
    abuse = paths["/v1/admin/abuse"]["get"]["responses"]
    assert {"401", "403"} <= set(abuse)


def test_the_root_redirects_to_the_dashboard(client: TestClient) -> None:
    response = client.get("/", follow_redirects=False)
    assert response.status_code == 307
    assert response.headers["location"] == "/dashboard"
    assert client.get("/").headers["content-type"].startswith("text/html")
