"""Slow and greedy clients against a real server: they cannot delay normal beacons,
are cut off by the request timeout and the head-size limit, and the concurrency
limit answers 503 beyond it (docs/hardening.md)."""

from __future__ import annotations

import contextlib
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.abuse.conftest import (
    GENEROUS,
    SAFETY_SECONDS,
    closed_within,
    connect,
    head,
    read_answer,
    register,
    send_beacon,
    still_serves,
)
from tests.conftest import ServerProcess, StartServer

SLOW_CLIENTS = 200
BYTE_EVERY_SECONDS = 2.0
BEACON_BOUND_SECONDS = 2.0  # a fresh connection and an fsynced commit take milliseconds


class Trickle:
    """Sockets that each send one byte of a beacon request every few seconds, never all."""

    def __init__(self, server: ServerProcess, count: int, every: float) -> None:
        self.request = head("/v1/beacon", "Content-Length: 60")
        self.sockets = [connect(server) for _ in range(count)]
        self.sent = 0
        self.every = every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run)

    def __enter__(self) -> Trickle:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(10)
        for sock in self.sockets:
            sock.close()

    def _run(self) -> None:
        while not self._stop.is_set() and self.sent < len(self.request):
            byte = self.request[self.sent : self.sent + 1]
            for sock in self.sockets:
                with contextlib.suppress(OSError):  # the server may have closed it
                    sock.sendall(byte)
            self.sent += 1
            self._stop.wait(self.every)

    def still_waiting(self) -> int:
        """How many sockets the server neither answered nor closed."""
        waiting = 0
        for sock in self.sockets:
            sock.setblocking(False)
            try:
                sock.recv(1)  # an answer, or the end of the connection
            except BlockingIOError:
                waiting += 1
            except OSError:
                pass
            finally:
                sock.setblocking(True)
        return waiting


def test_two_hundred_slow_clients_do_not_delay_beacons(server: ServerProcess) -> None:
    alone = [send_beacon(server.url) for _ in range(20)]
    with Trickle(server, SLOW_CLIENTS, BYTE_EVERY_SECONDS) as slow:
        time.sleep(0.5)  # every slow connection accepted and begun
        during = []
        for _ in range(20):
            during.append(send_beacon(server.url))
            time.sleep(0.2)
        assert slow.sent >= 2
        assert slow.still_waiting() == SLOW_CLIENTS  # they really were held while beacons ran
    assert [status for status, _ in alone + during] == [204] * 40
    assert max(seconds for _, seconds in during) < BEACON_BOUND_SECONDS
    typical_alone = statistics.median(seconds for _, seconds in alone)
    typical_during = statistics.median(seconds for _, seconds in during)
    assert typical_during < max(10 * typical_alone, 0.25), (typical_alone, typical_during)


def test_a_request_that_trickles_in_is_cut_off_at_the_request_timeout(
    data_dir: Path, start: StartServer
) -> None:
    register(data_dir)
    server = start(data_dir, *GENEROUS, "--timeout-request", "1")
    silent = connect(server)  # opens a connection and sends nothing
    with Trickle(server, 3, 0.2) as slow:  # would take 40 s to send its head
        began = time.monotonic()
        assert all(closed_within(sock, 5) for sock in [silent, *slow.sockets])
        assert time.monotonic() - began < 3
        assert slow.sent < len(slow.request)
    silent.close()
    assert still_serves(server)  # a whole request well within the timeout is answered


def test_a_body_that_trickles_in_is_cut_off_at_the_request_timeout(
    data_dir: Path, start: StartServer
) -> None:
    register(data_dir)
    server = start(data_dir, *GENEROUS, "--timeout-request", "1")
    with connect(server) as sock:
        sock.sendall(head("/v1/beacon", "Content-Length: 60") + b'{"tour":')
        assert closed_within(sock, 5)
    assert still_serves(server)


def test_an_idle_kept_alive_connection_is_closed_after_the_keep_alive_timeout(
    data_dir: Path, start: StartServer
) -> None:
    register(data_dir)
    server = start(data_dir, *GENEROUS, "--timeout-keep-alive", "1")
    with connect(server) as sock:
        sock.sendall(head("/healthz", method="GET"))
        assert read_answer(sock).status == 200
        began = time.monotonic()
        assert closed_within(sock, 5)
        assert 0.5 < time.monotonic() - began < 3


def test_a_request_head_over_16_kib_is_refused_and_the_connection_closed(
    server: ServerProcess,
) -> None:
    with connect(server) as sock:
        sock.sendall(b"GET /" + b"a" * 20_000)  # a URL that has not ended yet
        answer = read_answer(sock)
        assert answer.status == 431
        assert closed_within(sock, 5)
    with connect(server) as sock:
        sock.sendall(b"POST /v1/beacon HTTP/1.1\r\nHost: tourviews.test\r\n")
        sent = 0
        try:
            for _ in range(1_000):  # 64 MB of one header, unless the server hangs up first
                sock.sendall(b"X-Filler: " + b"a" * 65_536 + b"\r\n")
                sent += 1
        except (BrokenPipeError, ConnectionResetError):
            pass
        assert sent < 1_000
    assert still_serves(server)


def test_a_large_head_within_the_limit_is_served(server: ServerProcess) -> None:
    with connect(server) as sock:
        cookie = "Cookie: " + "a" * 12_000
        sock.sendall(head("/healthz", cookie, method="GET"))
        assert read_answer(sock).status == 200


def test_connections_beyond_the_concurrency_limit_are_answered_503(
    data_dir: Path, start: StartServer
) -> None:
    register(data_dir)
    server = start(data_dir, *GENEROUS, "--limit-concurrency", "20")
    idle = [connect(server) for _ in range(20)]
    deadline = time.monotonic() + 5
    status = 0
    while status != 503 and time.monotonic() < deadline:  # until the server has accepted them
        status = send_beacon(server.url)[0]
    assert status == 503
    refused = httpx.get(f"{server.url}/healthz", timeout=SAFETY_SECONDS)
    assert refused.status_code == 503
    assert refused.json() == {"error": "too many connections"}
    assert refused.headers["Retry-After"] == "1"
    for sock in idle:
        sock.close()
    deadline = time.monotonic() + 5
    while status != 204 and time.monotonic() < deadline:
        status = send_beacon(server.url)[0]
    assert status == 204


@pytest.mark.parametrize(
    ("flag", "value"),
    [("--limit-concurrency", "0"), ("--timeout-keep-alive", "0"), ("--timeout-request", "-1")],
)
def test_a_bad_connection_flag_is_a_one_line_error(data_dir: Path, flag: str, value: str) -> None:
    command = [sys.executable, "-m", "tourviews", "serve", "--port", "0",
               "--data", str(data_dir), flag, value]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert result.stderr.startswith(f"tourviews: error: {flag} must be")
    assert result.stderr.count("\n") == 1
