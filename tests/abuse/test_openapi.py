"""Schemathesis over every operation of the OpenAPI document, as an admin and as an
owner: no 5xx, and every answer is one the document describes, with its body."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.python.asgi import shutdown_lifespans
from schemathesis.specs.openapi.schemas import OpenApiSchema
from starlette.testclient import TestClient

from tourviews.app import TourviewsApp


@pytest.fixture
def api_schema(app: TourviewsApp) -> Iterator[OpenApiSchema]:
    yield schemathesis.openapi.from_asgi("/openapi.json", app)
    shutdown_lifespans()  # the service's committer and database, started for the requests


# Not ``schema.parametrize()``: Schemathesis 4.32's pytest integration reads
# ``request.node._nodeid``, which pytest 9.2 no longer has. A Hypothesis test per
# operation, each a subtest, is the same thing spelled out.
def test_every_operation_answers_what_the_document_says(
    api_schema: OpenApiSchema, app: TourviewsApp, admin_token: str, subtests: pytest.Subtests
) -> None:
    tokens = [admin_token, app.service.registry.create_token("acme")]
    operations = [result.ok() for result in api_schema.get_all_operations()]
    documented = sum(len(methods) for methods in app.api.openapi()["paths"].values())
    assert len(operations) == documented >= 15
    for operation in operations:
        cases = st.one_of(*(operation.as_strategy(mode) for mode in GenerationMode))

        @settings(max_examples=20, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))  # fmt: skip
        @given(case=cases)
        def answers_as_documented(case: schemathesis.Case) -> None:
            for token in tokens:
                response = case.call(headers={"Authorization": f"Bearer {token}"})
                # The document cannot say that `from` comes before `to` and within
                # 400 days, nor every rule of an origin: a request valid by the
                # document may rightly answer 400. Nor can it bound a whole body: one
                # past 2,048 bytes is refused (413, documented) before it is parsed,
                # whatever it holds.
                excluded = [schemathesis.checks.positive_data_acceptance]
                if response.status_code == 413:
                    excluded.append(schemathesis.checks.negative_data_rejection)
                case.validate_response(response, excluded_checks=excluded)

        with subtests.test(operation.label):
            answers_as_documented()


# What Schemathesis found, pinned so that it is checked on every run, not by chance.


@pytest.mark.parametrize(
    "path",
    [
        "/v1/tours?to=0001-01-01",  # the default start would be 29 days before year 1
        "/v1/admin/abuse?to=0001-01-05",
        "/v1/admin/abuse?from=9999-12-31&to=9999-12-31",  # its end is the day after
        "/v1/tours/t1/stats?from=9999-12-31&to=9999-12-31",
    ],
)
def test_days_at_the_ends_of_the_calendar_answer_400(
    client: TestClient, admin_token: str, path: str
) -> None:
    response = client.get(path, headers={"Authorization": f"Bearer {admin_token}"})
    assert response.status_code == 400
    assert response.json()["field"] in ("from", "to")


def test_an_origin_that_is_not_a_url_answers_400(client: TestClient, admin_token: str) -> None:
    body = {"org": "acme", "origins": ["http://["]}  # urlsplit: "Invalid IPv6 URL"
    response = client.put(
        "/v1/admin/tours/t2", json=body, headers={"Authorization": f"Bearer {admin_token}"}
    )
    assert response.status_code == 400
    assert response.json()["field"] == "origins"


def test_a_body_that_is_not_json_names_no_field(client: TestClient, admin_token: str) -> None:
    headers = {"Authorization": f"Bearer {admin_token}", "Content-Type": "application/json"}
    response = client.post("/v1/admin/tokens", content=b'{"org": ', headers=headers)
    assert response.status_code == 400
    assert response.json() == {"error": "body is not valid JSON", "field": None}


def test_starlettes_own_errors_answer_in_the_contracts_shape(
    client: TestClient, admin_token: str
) -> None:
    headers = {"Authorization": f"Bearer {admin_token}", "Content-Type": "application/json"}
    not_utf8 = client.post("/v1/admin/tokens", content=b'{"org": "\xff"}', headers=headers)
    assert not_utf8.status_code == 400
    assert not_utf8.json() == {"error": "There was an error parsing the body", "field": None}
    assert client.get("/nowhere").json() == {"error": "Not Found", "field": None}
    wrong_method = client.post("/healthz")
    assert wrong_method.status_code == 405
    assert wrong_method.headers["allow"] == "GET"
    assert wrong_method.json() == {"error": "Method Not Allowed", "field": None}


def test_the_document_lists_no_answer_the_service_never_gives(app: TourviewsApp) -> None:
    document = app.api.openapi()
    answers = {
        (path, method): set(operation["responses"])
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
    }
    assert not any("422" in codes for codes in answers.values())
    assert "ValidationError" not in document["components"]["schemas"]
    assert "403" not in answers[("/v1/tours", "get")]  # an owner route never needs admin
    assert "304" in answers[("/beacon.js", "get")]
    assert "503" in answers[("/healthz", "get")]


def test_stats_of_a_quiet_tour_across_the_retention_horizon_answer_200(
    client: TestClient, admin_token: str
) -> None:
    auth = {"Authorization": f"Bearer {admin_token}"}
    assert client.post("/v1/admin/purge", headers=auth).status_code == 200  # sets the horizon
    response = client.get("/v1/tours/t1/stats?from=2026-10-01&to=2026-11-24", headers=auth)
    assert response.status_code == 200
    assert (
        response.json()["totals"].items()
        >= {"views": 0, "visitors": 0, "visitors_exact": True}.items()
    )
