"""/beacon.js as served: small, cacheable, the right type."""

from __future__ import annotations

from starlette.testclient import TestClient


def test_beacon_js_is_under_1_5_kb_as_served(client: TestClient) -> None:
    response = client.get("/beacon.js", headers={"Accept-Encoding": "identity"})
    assert response.status_code == 200
    assert len(response.content) < 1_536
    assert b"keepalive" in response.content and b"tourviews.visitor" in response.content


def test_beacon_js_has_a_script_type_and_is_cacheable(client: TestClient) -> None:
    response = client.get("/beacon.js")
    assert response.headers["content-type"] == "text/javascript; charset=utf-8"
    assert response.headers["cache-control"] == "public, max-age=3600"
    again = client.get("/beacon.js", headers={"If-None-Match": response.headers["etag"]})
    assert again.status_code == 304
    assert again.content == b""


def test_the_optional_scripts_are_small_and_served_like_beacon_js(client: TestClient) -> None:
    for name, marker in (("engage.js", b'"engage"'), ("counter.js", b"data-tourviews-counter")):
        response = client.get(f"/{name}", headers={"Accept-Encoding": "identity"})
        assert response.status_code == 200
        assert len(response.content) < 1_024 and marker in response.content
        assert response.headers["content-type"] == "text/javascript; charset=utf-8"
        again = client.get(f"/{name}", headers={"If-None-Match": response.headers["etag"]})
        assert again.status_code == 304
