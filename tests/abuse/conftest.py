"""A real ``tourviews serve`` for the abuse suite, and HTTP spoken over raw sockets.

The raw sockets are the point: an HTTP client library sends whole, well-formed
requests, and an abuser does not.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson
import pytest

from tests.conftest import CHROME, ServerProcess, start_server, visitor
from tourviews.control import Local

SAFETY_SECONDS = 10.0  # a bound on a hung test, not a speed requirement
# One test address sends every beacon: lift the per-address limit out of the way.
GENEROUS = ("--ip-rate", "600000", "--ip-burst", "100000")


def register(data_dir: Path, tour: str = "t1") -> None:
    """Register ``tour`` on the database, before a server opens it."""
    data_dir.mkdir(parents=True, exist_ok=True)
    local = Local(data_dir)
    try:
        local.put_tour(tour, "acme", [])
    finally:
        local.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One server for a module's tests, tour ``t1`` registered; its output checked at the end."""
    data_dir = tmp_path_factory.mktemp("abuse") / "data"
    register(data_dir)
    server = start_server(data_dir, *GENEROUS)
    yield server
    alive = server.process.poll() is None
    server.kill()
    output = server.output().decode()
    assert alive, output
    assert "Traceback" not in output and "ERROR" not in output, output


def send_beacon(url: str) -> tuple[int, float]:
    """A normal beacon on a new connection: its status and how long the answer took."""
    body = orjson.dumps({"tour": "t1", "visitor": visitor()})
    headers = {"Content-Type": "text/plain", "User-Agent": CHROME}
    began = time.perf_counter()
    status = httpx.post(
        f"{url}/v1/beacon", content=body, headers=headers, timeout=SAFETY_SECONDS
    ).status_code
    return status, time.perf_counter() - began


def still_serves(server: ServerProcess) -> bool:
    return send_beacon(server.url)[0] == 204


def connect(server: ServerProcess) -> socket.socket:
    parts = urlsplit(server.url)
    assert parts.hostname is not None and parts.port is not None
    return socket.create_connection((parts.hostname, parts.port), timeout=SAFETY_SECONDS)


def head(path: str = "/v1/beacon", *lines: str, method: str = "POST") -> bytes:
    """A request head: request line, the headers a browser's beacon has, then ``lines``."""
    headers = [f"{method} {path} HTTP/1.1", "Host: tourviews.test",
               "Content-Type: text/plain", f"User-Agent: {CHROME}", *lines]  # fmt: skip
    return ("\r\n".join(headers) + "\r\n\r\n").encode()


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body)


def read_answer(sock: socket.socket) -> Answer:
    """One response from the socket (its body by Content-Length)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65_536)
        if not chunk:
            raise ConnectionError(f"closed after {data!r}")
        data += chunk
    raw_head, _, body = data.partition(b"\r\n\r\n")
    status_line, *header_lines = raw_head.decode("latin-1").split("\r\n")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = sock.recv(65_536)
        if not chunk:
            raise ConnectionError(f"closed in the body after {body!r}")
        body += chunk
    return Answer(int(status_line.split()[1]), headers, body[:length])


def closed_within(sock: socket.socket, seconds: float) -> bool:
    """Whether the server closes the connection within ``seconds`` (what it sent first is read)."""
    sock.settimeout(seconds)
    try:
        while sock.recv(65_536):
            pass
    except ConnectionResetError:
        pass
    except TimeoutError:
        return False
    return True
