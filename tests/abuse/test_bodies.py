"""Oversized, endless and pathological bodies against a real server: refused without
being read past the limit, answered with the contract's JSON error, and the server
keeps serving."""

from __future__ import annotations

import httpx
import pytest

from tests.abuse.conftest import SAFETY_SECONDS, connect, head, read_answer, still_serves
from tests.conftest import CHROME, ServerProcess

VISITOR = "4c081d77-446a-4f8f-89c6-86b91f3a1094"
BEACON_LIMIT = 2_048
API_LIMIT = 65_536


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


@pytest.mark.parametrize("declared", [BEACON_LIMIT + 1, 10**9, 10**18])
def test_a_declared_length_over_the_limit_is_refused_before_the_body_is_sent(
    server: ServerProcess, declared: int
) -> None:
    with connect(server) as sock:
        sock.sendall(head("/v1/beacon", f"Content-Length: {declared}"))  # and never the body
        answer = read_answer(sock)
    assert answer.status == 413
    assert answer.json() == {"error": f"body must be at most {BEACON_LIMIT} bytes"}
    assert still_serves(server)


def test_a_length_too_long_to_be_a_number_is_refused_by_the_parser(server: ServerProcess) -> None:
    with connect(server) as sock:
        sock.sendall(head("/v1/beacon", f"Content-Length: {10**30}"))
        answer = read_answer(sock)
    assert answer.status == 400  # uvicorn's own plain-text answer: the request is not HTTP
    assert answer.headers["connection"] == "close"
    assert still_serves(server)


def test_a_chunked_body_is_refused_as_soon_as_it_passes_the_limit(server: ServerProcess) -> None:
    with connect(server) as sock:
        sock.sendall(head("/v1/beacon", "Transfer-Encoding: chunked"))
        for _ in range(3):  # 2,100 bytes of a body that never ends
            sock.sendall(chunk(b"a" * 700))
        answer = read_answer(sock)
    assert answer.status == 413
    assert answer.json() == {"error": f"body must be at most {BEACON_LIMIT} bytes"}
    assert still_serves(server)


def test_an_api_body_over_its_limit_is_refused_before_it_is_sent(server: ServerProcess) -> None:
    with connect(server) as sock:  # no token: the size is checked before anything else
        sock.sendall(head("/v1/admin/tours/t2", "Content-Length: 1000000000", method="PUT"))
        answer = read_answer(sock)
    assert answer.status == 413
    assert answer.json() == {"error": f"body must be at most {API_LIMIT} bytes", "field": None}


def test_a_chunked_api_body_is_refused_as_soon_as_it_passes_its_limit(
    server: ServerProcess,
) -> None:
    with connect(server) as sock:
        sock.sendall(head("/v1/admin/tours/t2", "Transfer-Encoding: chunked", method="PUT"))
        for _ in range(10):  # 70,000 bytes of a body that never ends
            sock.sendall(chunk(b" " * 7_000))
        answer = read_answer(sock)
    assert answer.status == 413
    assert answer.json() == {"error": f"body must be at most {API_LIMIT} bytes", "field": None}
    assert still_serves(server)


def nested(levels: int) -> str:
    return '{"a":' * levels + "1" + "}" * levels


BOMBS = {
    # name: (body, status, the field the error names)
    "deepest array that fits": (b"[" * 1024 + b"]" * 1024, 400, None),
    "array never closed": (b"[" * BEACON_LIMIT, 400, None),
    "deep object as the tour": (f'{{"tour":{nested(339)}}}', 400, "tour"),
    "2,000-digit number as the tour": ('{"tour":' + "9" * 1_990 + "}", 400, None),
    "2,000-digit number in an unknown field": (
        f'{{"tour":"t1","visitor":"{VISITOR}","n":{"9" * 1_900}}}',
        400,
        None,
    ),
    "exponent past any float": ('{"tour":1e999999}', 400, None),
    "2,000-character tour": ('{"tour":"' + "a" * 1_990 + '"}', 400, "tour"),
    "2,000-character visitor": ('{"tour":"t1","visitor":"' + "f" * 1_950 + '"}', 400, "visitor"),
    "2,000-character scene": (
        f'{{"tour":"t1","visitor":"{VISITOR}","event":"scene","scene":"{"s" * 1_900}"}}',
        400,
        "scene",
    ),
    "tour of escaped NULs": ('{"tour":"' + "\\u0000" * 330 + '"}', 400, "tour"),
    "200 keys and no tour": ("{" + ",".join(f'"k{n}":0' for n in range(200)) + "}", 400, "tour"),
    "100,000-digit number": ('{"tour":"t1","n":' + "9" * 100_000 + "}", 413, None),
    "100,000-character string": ('{"tour":"' + "a" * 100_000 + '"}', 413, None),
}


@pytest.mark.parametrize("name", BOMBS)
def test_a_json_bomb_is_answered_with_the_contracts_error(server: ServerProcess, name: str) -> None:
    body, status, field = BOMBS[name]
    content = body.encode() if isinstance(body, str) else body
    assert (len(content) <= BEACON_LIMIT) == (status != 413)  # each bomb is on its side of it
    headers = {"Content-Type": "application/json", "User-Agent": CHROME}
    response = httpx.post(
        f"{server.url}/v1/beacon", content=content, headers=headers, timeout=SAFETY_SECONDS
    )
    assert response.status_code == status, response.text
    error = response.json()
    assert isinstance(error["error"], str)
    if status == 400:
        assert error["field"] == field
    assert still_serves(server)


def test_a_deep_object_in_an_unknown_field_is_ignored(server: ServerProcess) -> None:
    body = f'{{"tour":"t1","visitor":"{VISITOR}","x":{nested(330)}}}'.encode()
    assert len(body) <= BEACON_LIMIT
    headers = {"Content-Type": "application/json", "User-Agent": CHROME}
    response = httpx.post(
        f"{server.url}/v1/beacon", content=body, headers=headers, timeout=SAFETY_SECONDS
    )
    assert response.status_code == 204


@pytest.mark.parametrize("path", ["/v1/beacon", "/v1/tours", "/v1/admin/tours/t2"])
def test_a_length_of_thousands_of_digits_that_fits_64_bits_is_a_client_error(
    server: ServerProcess, path: str
) -> None:
    # Leading zeros: the parser takes it, but Python refuses to read 4,400 digits as int.
    with connect(server) as sock:
        sock.sendall(head(path, "Content-Length: " + "0" * 4_400 + "7"))
        sock.sendall(b'{"a":1}')
        answer = read_answer(sock)
    assert 400 <= answer.status < 500
    assert still_serves(server)
