"""Whatever arrives, the beacon endpoint answers 204 or a 4xx JSON error: never a 5xx."""

from __future__ import annotations

import json

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from tests.conftest import visitor


def encode(value: object) -> bytes:
    # The standard library writes what orjson will not: huge integers, NaN, Infinity.
    return json.dumps(value).encode()


printable = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=60)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=80),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
beacon_like = st.fixed_dictionaries(
    {},
    optional={
        "tour": st.sampled_from(["t1", "nosuchtour", "", "x" * 65]) | json_values,
        "visitor": st.uuids().map(str) | json_values,
        "event": st.sampled_from(["view", "scene", "VIEW"]) | json_values,
        "scene": st.sampled_from(["lobby", "a b"]) | json_values,
    },
).map(encode)
bodies = st.binary(max_size=2_500) | beacon_like | json_values.map(encode)
content_types = (
    st.sampled_from(
        ["application/json", "text/plain", "text/plain;charset=UTF-8", "APPLICATION/JSON ; x=y", ""]
    )
    | printable
)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=bodies, content_type=content_types, agent=printable)
def test_any_body_and_content_type_gets_204_or_a_4xx_json_error(
    client: TestClient, body: bytes, content_type: str, agent: str
) -> None:
    headers = {"User-Agent": agent}
    if content_type:
        headers["Content-Type"] = content_type
    response = client.post("/v1/beacon", content=body, headers=headers)
    assert response.status_code == 204 or 400 <= response.status_code < 500, response.text
    if response.status_code != 204:
        assert isinstance(response.json()["error"], str)


def test_valid_beacon_still_counts_after_a_storm_of_garbage(client: TestClient) -> None:
    for junk in (b"\xff\xfe", b"{" * 1500, b"[" * 2000, b"9" * 2000, b'{"tour": "t1"' * 50):
        assert client.post(
            "/v1/beacon", content=junk, headers={"Content-Type": "text/plain"}
        ).status_code in (400, 413)
    body = orjson.dumps({"tour": "t1", "visitor": visitor()})
    assert (
        client.post("/v1/beacon", content=body, headers={"Content-Type": "text/plain"}).status_code
        == 204
    )
