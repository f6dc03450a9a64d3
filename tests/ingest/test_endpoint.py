"""POST /v1/beacon over HTTP: one test per row of the contract's answer table, and CORS."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import httpx
import orjson
import pytest
from starlette.testclient import TestClient

from tests.conftest import CHROME, beacon, counted_views, visitor
from tourviews.app import TourviewsApp

JSON = {"Content-Type": "application/json"}
TEXT = {"Content-Type": "text/plain;charset=UTF-8"}


def post(client: TestClient, body: bytes, headers: dict[str, str] | None = None) -> httpx.Response:
    return client.post("/v1/beacon", content=body, headers=JSON if headers is None else headers)


def test_view_sent_as_json_is_accepted_with_204(client: TestClient) -> None:
    response = post(client, beacon())
    assert response.status_code == 204
    assert response.content == b""


def test_view_sent_as_text_plain_like_send_beacon_is_accepted(client: TestClient) -> None:
    assert post(client, beacon(), TEXT).status_code == 204


def test_accepted_view_is_counted_in_duckdb(app: TourviewsApp, client: TestClient) -> None:
    for _ in range(3):
        assert post(client, beacon()).status_code == 204
    client.__exit__(None, None, None)  # stop the service: the file is then readable
    assert counted_views(app.service.settings.data_dir, "t1") == 3


def test_scene_event_with_scene_is_accepted(client: TestClient) -> None:
    assert post(client, beacon(event="scene", scene="lobby")).status_code == 204


def test_unknown_fields_are_ignored(client: TestClient) -> None:
    assert post(client, beacon(colour="x", extra={"a": [1, 2]})).status_code == 204


@pytest.mark.parametrize(
    ("body", "field", "error"),
    [
        (b"{not json", None, "body is not valid JSON"),
        (b"", None, "body is not valid JSON"),
        (b"[1, 2]", None, "body must be a JSON object"),
        (b'"t1"', None, "body must be a JSON object"),
        (orjson.dumps({"visitor": visitor()}), "tour", "tour is required"),
        (orjson.dumps({"tour": "t1"}), "visitor", "visitor is required"),
        (orjson.dumps({"tour": "bad tour!", "visitor": visitor()}), "tour", None),
        (orjson.dumps({"tour": "x" * 65, "visitor": visitor()}), "tour", None),
        (orjson.dumps({"tour": 7, "visitor": visitor()}), "tour", None),
        (orjson.dumps({"tour": "t1", "visitor": "not-a-uuid"}), "visitor", None),
        (orjson.dumps({"tour": "t1", "visitor": visitor().replace("-", "")}), "visitor", None),
        # 32 hex digits that spell "jane@example.io": not a random (version 4) UUID
        (
            orjson.dumps({"tour": "t1", "visitor": "6a616e65-4065-7861-6d70-6c652e696f00"}),
            "visitor",
            None,
        ),
        (
            orjson.dumps({"tour": "t1", "visitor": "4c081d77-446a-1f8f-89c6-86b91f3a1094"}),
            "visitor",
            None,
        ),
        (
            orjson.dumps({"tour": "t1", "visitor": "4c081d77-446a-4f8f-c9c6-86b91f3a1094"}),
            "visitor",
            None,
        ),
        (orjson.dumps({"tour": "t1", "visitor": visitor(), "event": "click"}), "event", None),
        (orjson.dumps({"tour": "t1", "visitor": visitor(), "event": ["view"]}), "event", None),
        (orjson.dumps({"tour": "t1", "visitor": visitor(), "event": "scene"}), "scene", None),
        (orjson.dumps({"tour": "t1", "visitor": visitor(), "scene": "a/b"}), "scene", None),
        (orjson.dumps({"tour": "t1", "visitor": visitor(), "scene": ""}), "scene", None),
    ],
)
def test_malformed_beacon_answers_400_naming_the_field(
    client: TestClient, body: bytes, field: str | None, error: str | None
) -> None:
    response = post(client, body)
    assert response.status_code == 400
    answer = response.json()
    assert answer["field"] == field
    assert isinstance(answer["error"], str) and answer["error"]
    if error is not None:
        assert answer["error"] == error


def test_unregistered_tour_answers_404(client: TestClient) -> None:
    response = post(client, beacon("nosuchtour"))
    assert response.status_code == 404
    assert response.json() == {"error": "unknown tour", "field": "tour"}


def test_body_over_2048_bytes_answers_413(client: TestClient) -> None:
    body = orjson.dumps({"tour": "t1", "visitor": visitor(), "pad": "x" * 2100})
    response = post(client, body)
    assert response.status_code == 413
    assert "2048" in response.json()["error"]


def test_body_of_exactly_2048_bytes_is_accepted(client: TestClient) -> None:
    start = orjson.dumps({"tour": "t1", "visitor": visitor(), "pad": ""})
    body = start[:-2] + b"x" * (2048 - len(start)) + b'"}'
    assert len(body) == 2048
    assert post(client, body).status_code == 204


def test_chunked_body_over_the_limit_answers_413(client: TestClient) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"tour": "t1", "visitor": "' + visitor().encode() + b'", "pad": "'
        for _ in range(100):
            yield b"x" * 100
        yield b'"}'

    response = client.post("/v1/beacon", content=chunks(), headers=JSON)
    assert response.status_code == 413


def test_chunked_body_under_the_limit_is_accepted(client: TestClient) -> None:
    def chunks() -> Iterator[bytes]:
        yield beacon()[:10]
        yield beacon()[10:]

    body = beacon()
    response = client.post("/v1/beacon", content=iter([body[:10], body[10:]]), headers=JSON)
    assert response.status_code == 204


@pytest.mark.parametrize(
    "content_type", ["application/x-www-form-urlencoded", "multipart/form-data", "", "json"]
)
def test_other_content_type_answers_415(client: TestClient, content_type: str) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    response = client.post("/v1/beacon", content=beacon(), headers=headers)
    assert response.status_code == 415
    assert "Content-Type" in response.json()["error"]


def test_exceeding_the_per_visitor_rate_answers_429_with_retry_after(client: TestClient) -> None:
    # Per visitor: 120/minute, burst 30. The 31st beacon at once is refused.
    same = visitor()
    body = orjson.dumps({"tour": "t1", "visitor": same})
    answers = [post(client, body).status_code for _ in range(31)]
    assert answers[:30] == [204] * 30
    assert answers[30] == 429
    response = post(client, body)
    assert response.status_code == 429
    assert response.json() == {"error": "rate limited", "retry_after": 1}
    assert response.headers["Retry-After"] == "1"


def send_while_the_writer_is_busy(app: TourviewsApp, bodies: list[bytes]) -> list[httpx.Response]:
    """Beacons sent while a long commit holds the writer, with room for two in the queue."""
    committer = app.service.committer
    committer._max_pending = 2
    release = threading.Event()

    async def scenario() -> list[httpx.Response]:
        blocked = asyncio.get_running_loop().run_in_executor(committer._executor, release.wait)
        transport = httpx.ASGITransport(app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            headers = {**JSON, "User-Agent": CHROME}
            send = [http.post("/v1/beacon", content=body, headers=headers) for body in bodies]
            tasks = [asyncio.ensure_future(request) for request in send]
            await asyncio.sleep(0.2)
            release.set()
            await blocked
            return list(await asyncio.gather(*tasks))

    return asyncio.run(scenario())


def test_full_write_queue_answers_503_with_retry_after(app: TourviewsApp) -> None:
    responses = send_while_the_writer_is_busy(app, [beacon() for _ in range(3)])
    assert sorted(response.status_code for response in responses) == [204, 204, 503]
    refused = next(response for response in responses if response.status_code == 503)
    assert refused.headers["Retry-After"] == "1"


def test_view_refused_with_503_counts_when_retried(app: TourviewsApp) -> None:
    bodies = [beacon() for _ in range(3)]
    responses = send_while_the_writer_is_busy(app, bodies)
    refused = [
        body
        for body, response in zip(bodies, responses, strict=True)
        if response.status_code == 503
    ]
    assert len(refused) == 1
    with TestClient(app) as client:
        assert post(client, refused[0], {**JSON, "User-Agent": CHROME}).status_code == 204
    assert counted_views(app.service.settings.data_dir, "t1") == 3


def test_storage_failure_answers_503_and_health_reports_it(
    app: TourviewsApp, client: TestClient
) -> None:
    app.service.db._connection.close()  # the disk is gone, as far as DuckDB is concerned
    response = post(client, beacon())
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "1"
    assert response.json() == {"error": "storage failed"}
    assert client.get("/healthz").status_code == 503


def test_health_is_ok_while_beacons_are_accepted(app: TourviewsApp, client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok", "instance": app.service.instance}


def test_get_on_the_beacon_path_answers_405_json(client: TestClient) -> None:
    response = client.get("/v1/beacon")
    assert response.status_code == 405
    assert response.json() == {"error": "use POST"}


def test_preflight_answers_the_requesting_origin(client: TestClient) -> None:
    response = client.options(
        "/v1/beacon",
        headers={"Origin": "https://tours.example.com", "Access-Control-Request-Method": "POST"},
    )
    assert response.status_code == 204
    assert response.headers["Access-Control-Allow-Origin"] == "https://tours.example.com"
    assert "POST" in response.headers["Access-Control-Allow-Methods"]
    assert "Content-Type" in response.headers["Access-Control-Allow-Headers"]


def test_tour_without_origin_list_allows_any_origin(client: TestClient) -> None:
    response = post(client, beacon(), {**JSON, "Origin": "https://anywhere.example"})
    assert response.headers["Access-Control-Allow-Origin"] == "*"


def test_tour_with_origin_list_echoes_an_allowed_origin(client: TestClient) -> None:
    headers = {**JSON, "Origin": "https://tours.example.com"}
    response = post(client, beacon("locked"), headers)
    assert response.status_code == 204
    assert response.headers["Access-Control-Allow-Origin"] == "https://tours.example.com"


def test_tour_with_origin_list_does_not_allow_another_origin(client: TestClient) -> None:
    response = post(client, beacon("locked"), {**JSON, "Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in response.headers
