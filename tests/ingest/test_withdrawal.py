"""``POST /v1/visitor/forget``: a visitor's own withdrawal of consent."""

from __future__ import annotations

import time

import orjson
import pytest
from starlette.testclient import TestClient

from tests.conftest import view, visitor
from tourviews.app import TourviewsApp

FORGET = "/v1/visitor/forget"


def abuse_totals(client: TestClient, token: str, key: str, expected: int) -> int:
    """The abuse document's total for ``key`` once it reaches ``expected`` (drops are
    committed with the next batch, not waited for), or as it is after 5 seconds."""
    deadline = time.monotonic() + 5
    while True:
        report = client.get("/v1/admin/abuse", headers={"Authorization": f"Bearer {token}"})
        total = int(report.json()["totals"][key])
        if total >= expected or time.monotonic() > deadline:
            return total
        time.sleep(0.05)


def stats(client: TestClient, token: str) -> dict[str, object]:
    answer = client.get("/v1/tours/t1/stats", headers={"Authorization": f"Bearer {token}"})
    return dict(answer.json())


def test_a_visitor_who_withdraws_is_erased_and_the_others_stay(
    app: TourviewsApp, client: TestClient, admin_token: str
) -> None:
    gone, kept = visitor(), visitor()
    for who in (gone, kept):
        view(client, who)
        view(client, who, event="scene", scene="hall")
    assert stats(client, admin_token)["totals"]["views"] == 2  # type: ignore[index]

    body = orjson.dumps({"visitor": gone})
    answer = client.post(FORGET, content=body, headers={"Content-Type": "text/plain"})

    assert answer.status_code == 204
    assert answer.headers["access-control-allow-origin"] == "*"
    document = stats(client, admin_token)
    assert document["totals"].items() >= {"views": 1, "visitors": 1, "visitors_exact": True}.items()
    with app.service.db.using() as cursor:
        left = cursor.execute("SELECT DISTINCT visitor::VARCHAR FROM events").fetchall()
    assert left == [(kept,)]
    assert abuse_totals(client, admin_token, "withdrawn", 1) == 1
    # Again, and as JSON: nothing left to erase, still 204.
    assert client.post(FORGET, json={"visitor": gone}).status_code == 204


@pytest.mark.parametrize(
    ("body", "content_type", "status", "field"),
    [
        (b"{}", "application/json", 400, "visitor"),
        (b'{"visitor": "me@example.com"}', "application/json", 400, "visitor"),
        (b'{"visitor": 7}', "text/plain", 400, "visitor"),
        (b"not json", "text/plain", 400, None),
        (b"[]", "text/plain", 400, None),
        (b'{"visitor": "' + b"1" * 3_000 + b'"}', "text/plain", 413, None),
        (b"visitor=x", "application/x-www-form-urlencoded", 415, None),
    ],
)
def test_a_malformed_withdrawal_gets_a_clear_error(
    client: TestClient, body: bytes, content_type: str, status: int, field: str | None
) -> None:
    answer = client.post(FORGET, content=body, headers={"Content-Type": content_type})
    assert answer.status_code == status
    if status == 400:
        assert answer.json()["field"] == field


def test_withdrawals_are_limited_like_beacons(client: TestClient, admin_token: str) -> None:
    statuses = [client.post(FORGET, json={"visitor": visitor()}).status_code for _ in range(150)]
    assert statuses[0] == 204 and statuses[-1] == 429
    limited = client.post(FORGET, json={"visitor": visitor()})
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
    throttled = statuses.count(429) + 1
    assert abuse_totals(client, admin_token, "throttled", throttled) == throttled


def test_other_methods_are_refused(client: TestClient) -> None:
    assert client.get(FORGET).status_code == 405
    assert client.options(FORGET).status_code == 204


def test_a_beacon_that_arrives_after_the_withdrawal_is_not_counted(
    client: TestClient, admin_token: str
) -> None:
    who = visitor()
    view(client, who)
    assert client.post(FORGET, json={"visitor": who}).status_code == 204
    view(client, who, event="scene", scene="hall")  # sent before, from the page; late
    view(client, who)
    assert stats(client, admin_token)["totals"]["views"] == 0  # type: ignore[index]
    assert abuse_totals(client, admin_token, "withdrawn", 3) == 3
    other = visitor()
    view(client, other)
    assert stats(client, admin_token)["totals"]["views"] == 1  # type: ignore[index]
