"""``tourviews ingest --workers 2`` under load: a rolling restart (SIGHUP) fails no request.

The load's clients behave as HTTP/1.1 clients do: they keep connections alive and
open a new one when an answer says ``Connection: close``. Any other end of a
connection, and any answer but 204, is a failed request.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Self
from urllib.parse import urlsplit

import httpx
import orjson

from tests.conftest import CHROME, start_server, stored_visitors
from tests.redis_server import RedisServer
from tests.tourviews.test_redis_mode import PROXY, SECRET, command, wait_until_drained

SERVE = (*PROXY, "--tour-rate", "1000000", "--tour-burst", "1000000")
CONNECTIONS = 16


class Background:
    """Requests sent from a thread for as long as the ``with`` block lasts."""

    join_seconds = 30.0

    def __init__(self) -> None:
        self.answers: Counter[int] = Counter()
        self.failed: list[str] = []  # requests that got no answer, or a wrong one
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._work)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(self.join_seconds)

    def _work(self) -> None:
        raise NotImplementedError


class PoliteLoad(Background):
    """Beacons over kept-alive connections that honour ``Connection: close``."""

    def __init__(self, url: str) -> None:
        super().__init__()
        address = urlsplit(url)
        self.host, self.port = address.hostname or "127.0.0.1", address.port or 80
        self.acknowledged: set[str] = set()
        self.reconnects = 0

    def _work(self) -> None:
        asyncio.run(self._run())

    async def _run(self) -> None:
        await asyncio.gather(*(self._connection() for _ in range(CONNECTIONS)))

    async def _connection(self) -> None:
        stream = None
        while not self._stop.is_set():
            if stream is None:
                stream = await asyncio.open_connection(self.host, self.port)
                self.reconnects += 1
            reader, writer = stream
            who = str(uuid.uuid4())
            address = "10.{}.{}.{}".format(*uuid.UUID(who).bytes[:3])
            body = orjson.dumps({"tour": "t1", "visitor": who})
            writer.write(
                f"POST /v1/beacon HTTP/1.1\r\nHost: {self.host}\r\nContent-Type: text/plain\r\n"
                f"User-Agent: {CHROME}\r\nX-Forwarded-For: {address}\r\n"
                f"Content-Length: {len(body)}\r\n\r\n".encode()
                + body
            )
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except (OSError, asyncio.IncompleteReadError) as exc:
                self.failed.append(f"{who}: {type(exc).__name__}")
                writer.close()
                stream = None
                continue
            lines = head.decode("latin-1").lower().split("\r\n")
            status = int(lines[0].split(" ", 2)[1])
            headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
            if "content-length" in headers:
                await reader.readexactly(int(headers["content-length"]))
            self.answers[status] += 1
            if status == 204:
                self.acknowledged.add(who)
            if headers.get("connection") == "close":
                writer.close()
                stream = None
        if stream is not None:
            stream[1].close()


def test_a_rolling_restart_of_two_workers_under_load_fails_no_request(tmp_path: Path) -> None:
    redis = RedisServer(tmp_path / "redis")
    redis.start()
    data = tmp_path / "data"
    primary = start_server(data, "--redis", redis.url, *SERVE, env=SECRET)
    log = tmp_path / "ingest.log"
    supervisor = None
    try:
        command(data, "tours", "add", "t1", "--org", "acme")
        with log.open("wb") as sink:
            supervisor = subprocess.Popen(
                [sys.executable, "-m", "tourviews", "ingest", "--port", "0", "--workers", "2",
                 "--redis", redis.url, *PROXY],
                stdout=sink, stderr=subprocess.STDOUT, env={**os.environ, **SECRET},
            )  # fmt: skip
        url = wait_for(log, r"listening on (http://\S+)")
        wait_for(log, r"2 workers serve")
        time.sleep(1.0)  # the tour reaches the workers
        load = restart_under_load(supervisor, log, url, processes=2)
        assert load.reconnects > CONNECTIONS, "no connection was closed by a stopping worker"
        supervisor.send_signal(signal.SIGTERM)
        assert supervisor.wait(30) == 0
        wait_until_drained(redis.url)
        assert primary.terminate() == 0
        stored = stored_visitors(data)
        assert load.acknowledged <= stored.keys()
    finally:
        if supervisor is not None and supervisor.poll() is None:
            supervisor.kill()
        if primary.process.poll() is None:
            primary.kill()
        redis.stop()


def restart_under_load(
    supervisor: subprocess.Popen[bytes], log: Path, url: str, processes: int
) -> PoliteLoad:
    """A rolling restart (SIGHUP) under load, which no beacon may fail."""
    with PoliteLoad(url) as load:
        time.sleep(1.0)
        before = sum(load.answers.values())
        supervisor.send_signal(signal.SIGHUP)
        wait_for(log, r"rolling restart done", timeout=120)
        time.sleep(1.0)
    pids = re.findall(r"Started server process \[(\d+)\]", log.read_text())
    assert len(set(pids)) == 2 * processes, "each process, then a new one for each"
    assert load.failed == [], f"failed requests: {load.failed[:3]}"
    assert set(load.answers) == {204}, load.answers
    assert sum(load.answers.values()) - before > 500, "the load did not run through it"
    return load


def wait_for(log: Path, pattern: str, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = re.search(pattern, log.read_text())
        if found:
            return found.group(1) if found.groups() else found.group(0)
        time.sleep(0.05)
    raise AssertionError(f"{pattern!r} not in the log: {log.read_text()}")


class Reads(Background):
    """The owner's stats, read again and again through the front workers."""

    join_seconds = 120.0  # a read may wait out the primary's restart

    def __init__(self, url: str, token: str) -> None:
        super().__init__()
        self._client = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"},
                                    timeout=90)  # fmt: skip

    def __exit__(self, *_: object) -> None:
        super().__exit__()
        self._client.close()

    def _work(self) -> None:
        while not self._stop.is_set():
            try:
                answer = self._client.get("/v1/tours/t1/stats")
            except httpx.HTTPError as exc:
                self.failed.append(type(exc).__name__)
                continue
            self.answers[answer.status_code] += 1
            if answer.status_code != 200 or "totals" not in answer.json():
                self.failed.append(f"{answer.status_code}: {answer.text[:200]}")
            time.sleep(0.05)


def test_serve_with_two_workers_forwards_the_api_and_restarts_under_load_failing_nothing(
    tmp_path: Path,
) -> None:
    redis = RedisServer(tmp_path / "redis")
    redis.start()
    data = tmp_path / "data"
    log = tmp_path / "serve.log"
    with log.open("wb") as sink:
        supervisor = subprocess.Popen(
            [sys.executable, "-m", "tourviews", "serve", "--data", str(data), "--port", "0",
             "--workers", "2", "--redis", redis.url, *SERVE, "--ip-burst", "2"],
            stdout=sink, stderr=subprocess.STDOUT, env={**os.environ, **SECRET},
        )  # fmt: skip
    try:
        url = wait_for(log, r"listening on (http://\S+)")
        assert f"kill -HUP {supervisor.pid} replaces them" in log.read_text()
        # the commands reach the primary through its socket in the data directory
        command(data, "tours", "add", "t1", "--org", "acme")
        token = re.findall(r"tv_\S+", command(data, "tokens", "create", "--org", "acme"))[-1]
        time.sleep(1.0)  # the tour reaches the workers
        with httpx.Client(base_url=url) as client:
            health = client.get("/healthz").json()
            assert (health["status"], health["role"], health["primary"]) == ("ok", "ingest", "ok")
            assert client.get("/dashboard").status_code == 200
            too_large = client.put("/v1/admin/tours/t2", content=b"x" * 100_000,
                                   headers={"Authorization": f"Bearer {token}"})  # fmt: skip
            assert too_large.status_code == 413, too_large.text
            assert "body must be" in too_large.json()["error"]

            # The primary throttles erasure requests by the address the front resolved,
            # and an address a client claims in the front's own header is not believed.
            def erase(address: str, claimed: str = "") -> int:
                body = orjson.dumps({"visitor": str(uuid.uuid4())})
                headers = {
                    "Content-Type": "text/plain",
                    "X-Forwarded-For": address,
                    "X-Tourviews-Client": claimed,
                }
                return client.post("/v1/visitor/forget", content=body, headers=headers).status_code

            erasures = [erase("198.51.100.7", f"203.0.113.{i}") for i in range(3)]
            assert erasures == [204, 204, 429]
            assert erase("198.51.100.8") == 204

        # A second supervisor on the same data directory leaves the first one's socket,
        # also while server.json is missing (as while the primary restarts).
        announced = (data / "server.json").read_bytes()
        (data / "server.json").unlink()
        second = subprocess.run(
            [sys.executable, "-m", "tourviews", "serve", "--data", str(data), "--port", "0",
             "--workers", "2", "--redis", redis.url],
            capture_output=True, text=True, timeout=60, env={**os.environ, **SECRET},
        )  # fmt: skip
        assert second.returncode == 1
        assert second.stderr.startswith("tourviews: error: "), second.stderr
        assert second.stderr.count("\n") == 1, second.stderr
        assert "another tourviews server listens on" in second.stderr
        (data / "server.json").write_bytes(announced)
        assert command(data, "tours", "list").startswith("t1")  # the primary answers still

        with Reads(url, token) as reads:
            load = restart_under_load(supervisor, log, url, processes=3)  # and a primary
        assert reads.failed == [], f"failed reads: {reads.failed[:3]}"
        assert reads.answers[200] > 10, reads.answers
        supervisor.send_signal(signal.SIGTERM)
        assert supervisor.wait(60) == 0
        assert not (data / "primary.sock").exists()
        stored = stored_visitors(data)
        assert load.acknowledged <= stored.keys()
        assert set(stored.values()) == {1}
    finally:
        if supervisor.poll() is None:
            supervisor.kill()
        redis.stop()


def test_a_stop_while_the_workers_start_is_a_stop_not_a_failure(tmp_path: Path) -> None:
    redis = RedisServer(tmp_path / "redis")
    redis.start()
    try:
        supervisor = subprocess.Popen(
            [sys.executable, "-m", "tourviews", "serve", "--data", str(tmp_path / "data"),
             "--port", "0", "--workers", "2", "--redis", redis.url],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            env={**os.environ, **SECRET},
        )  # fmt: skip
        children = Path(f"/proc/{supervisor.pid}/task/{supervisor.pid}/children")
        deadline = time.monotonic() + 60
        while not children.read_text().strip():  # until it starts its primary
            assert time.monotonic() < deadline and supervisor.poll() is None
            time.sleep(0.02)
        supervisor.send_signal(signal.SIGINT)  # Ctrl-C while the primary starts
        output, _ = supervisor.communicate(timeout=60)
        assert supervisor.returncode == 0, output
        assert "error" not in output.lower(), output
        assert not (tmp_path / "data" / "primary.sock").exists()
    finally:
        redis.stop()
