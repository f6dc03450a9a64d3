"""Fixtures: a data directory, a manual clock, the app in-process, a real server process."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import orjson
import pytest
from starlette.testclient import TestClient

from tourviews.app import TourviewsApp, create_app
from tourviews.settings import Settings
from tourviews.storage.clock import ManualClock


def _sleep_beside_faketime() -> None:
    """Under make soak's libfaketime run (the wall clock 400 days ahead, the monotonic
    clock real), Python's ``time.sleep`` fails with EINVAL: libfaketime 0.9.10 shifts
    the absolute monotonic deadline of ``clock_nanosleep`` by the wall clock's offset
    (libfaketime#426). Timed waits on a lock do not go through it, so every sleep of the
    test process waits on one; nothing else of the run is changed."""
    if "faketime" in os.environ.get("LD_PRELOAD", "") and os.environ.get("FAKETIME"):

        def sleep(seconds: float) -> None:
            if seconds < 0:
                raise ValueError("sleep length must be non-negative")
            threading.Event().wait(seconds)

        time.sleep = sleep


_sleep_beside_faketime()

CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
)
ADMIN_ORG = "ops"


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2026, 11, 24, 12, 0, tzinfo=UTC))


@pytest.fixture
def settings(data_dir: Path) -> Settings:
    return Settings(data_dir=data_dir)


@pytest.fixture
def app(settings: Settings, clock: ManualClock) -> TourviewsApp:
    app = create_app(settings, clock)
    app.service.registry.put_tour("t1", "acme")
    app.service.registry.put_tour("locked", "acme", ["https://tours.example.com"])
    return app


@pytest.fixture
def client(app: TourviewsApp) -> Iterator[TestClient]:
    with TestClient(app, headers={"user-agent": CHROME}) as client:
        yield client


@pytest.fixture
def admin_token(app: TourviewsApp) -> str:
    return app.service.registry.create_token(ADMIN_ORG, admin=True)


# Random, but the same stream in every pytest-xdist worker: parametrized tests carry
# visitor IDs in their names, and the workers must collect the same tests.
_IDS = random.Random(2026)


def visitor() -> str:
    return str(uuid.UUID(int=_IDS.getrandbits(128), version=4))


def beacon(tour: str = "t1", **fields: object) -> bytes:
    return orjson.dumps({"tour": tour, "visitor": visitor(), **fields})


def counted_views(data_dir: Path, tour: str | None = None) -> int:
    """Counted view events in the DuckDB file (the server must be stopped)."""
    import duckdb

    with duckdb.connect(str(data_dir / "tourviews.duckdb"), read_only=True) as con:
        where = "WHERE kind = 'view'" + (" AND tour = ?" if tour else "")
        row = con.execute(f"SELECT count(*) FROM events {where}", [tour] if tour else []).fetchone()
        assert row is not None
        return int(row[0])


@dataclass
class ServerProcess:
    """A real ``tourviews serve`` subprocess on a free port."""

    process: subprocess.Popen[bytes]
    url: str
    data_dir: Path
    log: Path

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def terminate(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(30)

    def output(self) -> bytes:
        return self.log.read_bytes()


def start_server(data_dir: Path, *args: str, env: dict[str, str] | None = None) -> ServerProcess:
    """Start ``tourviews serve --port 0`` and wait until it announces itself in server.json."""
    data_dir.mkdir(parents=True, exist_ok=True)
    server_file = data_dir / "server.json"
    server_file.unlink(missing_ok=True)
    log = data_dir.parent / f"server-{time.monotonic_ns()}.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "tourviews", "serve", "--port", "0", "--data", str(data_dir),
             *args],
            stdout=sink, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})},
        )  # fmt: skip
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited: {log.read_text()}")
        try:
            info = orjson.loads(server_file.read_bytes())
            if info["pid"] == process.pid:
                return ServerProcess(process, info["url"], data_dir, log)
        except (FileNotFoundError, orjson.JSONDecodeError):
            pass
        time.sleep(0.05)
    process.kill()
    raise RuntimeError(f"server did not start: {log.read_text()}")


StartServer = Callable[..., ServerProcess]


@pytest.fixture
def start() -> Iterator[StartServer]:
    """``start(data_dir, *serve_args, env=None)``; every server it started is killed at the end."""
    started: list[ServerProcess] = []

    def start(data_dir: Path, *args: str, env: dict[str, str] | None = None) -> ServerProcess:
        server = start_server(data_dir, *args, env=env)
        started.append(server)
        return server

    yield start
    for server in started:
        if server.process.poll() is None:
            server.process.kill()
            server.process.wait(10)


def send(
    client: TestClient, who: str, tour: str = "t1", agent: str | None = None, **fields: str
) -> int:
    """POST a beacon as ``navigator.sendBeacon`` does (text/plain); the answer's status."""
    headers = {"Content-Type": "text/plain"} | ({"User-Agent": agent} if agent else {})
    body = orjson.dumps({"tour": tour, "visitor": who, **fields})
    return client.post("/v1/beacon", content=body, headers=headers).status_code


def view(client: TestClient, who: str, agent: str | None = None, **fields: str) -> None:
    """Send a beacon for tour t1 that must be acknowledged."""
    assert send(client, who, "t1", agent, **fields) == 204


# A real server under load: the crash suite (tests/crash) and the SIGTERM test share these.

PROXY = ("--trusted-proxy", "127.0.0.1/32")


def register(data_dir: Path, tour: str = "t1") -> None:
    command = [sys.executable, "-m", "tourviews", "tours", "add", tour, "--org", "acme",
               "--data", str(data_dir)]  # fmt: skip
    subprocess.run(command, check=True, capture_output=True)


class Load:
    """Beacons over ``workers`` keep-alive connections, one new visitor each, until stopped.

    Each beacon comes through the trusted proxy from an address of its own, so no
    rate limit per address and no rotation guard stands in the way. A plain asyncio
    HTTP/1.1 client in a thread of its own: httpx costs about 1 ms of CPU a request,
    which on two shared cores slows the server it is meant to load by a factor of ten.
    """

    def __init__(
        self, url: str, workers: int = 12, tour: str = "t1", scene: str | None = None
    ) -> None:
        address = urlsplit(url)
        self.host, self.port = address.hostname or "127.0.0.1", address.port or 80
        self.workers = workers
        self.fields = {"tour": tour} | ({"scene": scene} if scene else {})
        self.acknowledged: set[str] = set()  # answered 204
        self.refused: list[int] = []  # answered with another status
        self.refused_ids: set[str] = set()  # their visitor IDs
        self.in_flight: set[str] = set()  # sent, but no answer came
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name="load")

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(30)
        assert not self._thread.is_alive(), "the load did not stop"
        if self._error is not None:
            raise self._error

    def _main(self) -> None:
        async def run() -> None:
            await asyncio.gather(*(self._connection() for _ in range(self.workers)))

        try:
            asyncio.run(run())
        except BaseException as exc:  # the test thread raises it on exit
            self._error = exc

    async def _connection(self) -> None:
        try:
            reader, writer = await asyncio.open_connection(self.host, self.port)
        except OSError:
            return  # the server is gone already
        try:
            while not self._stop.is_set():
                who = uuid.uuid4()
                address = "10.{}.{}.{}".format(*who.bytes[:3])  # a string in a header only
                body = orjson.dumps({**self.fields, "visitor": str(who)})
                request = (
                    f"POST /v1/beacon HTTP/1.1\r\nHost: {self.host}\r\n"
                    f"Content-Type: text/plain\r\nUser-Agent: {CHROME}\r\n"
                    f"X-Forwarded-For: {address}\r\nContent-Length: {len(body)}\r\n\r\n"
                )
                self.in_flight.add(str(who))
                writer.write(request.encode() + body)
                status = await _read_answer(reader)
                self.in_flight.discard(str(who))
                if status == 204:
                    self.acknowledged.add(str(who))
                else:
                    self.refused.append(status)
                    self.refused_ids.add(str(who))
        except (OSError, asyncio.IncompleteReadError):
            return  # the server is gone: the beacon in flight was not acknowledged
        finally:
            writer.close()


async def _read_answer(reader: asyncio.StreamReader) -> int:
    """The status of one HTTP/1.1 answer, its body read past."""
    head = await reader.readuntil(b"\r\n\r\n")
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            await reader.readexactly(int(value))
    return int(head.split(b" ", 2)[1])


def stored_visitors(data_dir: Path) -> dict[str, int]:
    """Counted view events per visitor ID (the server must be stopped)."""
    import duckdb

    with duckdb.connect(str(data_dir / "tourviews.duckdb"), read_only=True) as con:
        rows = con.execute(
            "SELECT visitor::VARCHAR, count(*) FROM events WHERE kind = 'view' GROUP BY 1"
        ).fetchall()
    return dict(rows)


def encodings(visitor: str) -> dict[str, bytes]:
    """Every form a visitor ID can take in a file."""
    value = uuid.UUID(visitor)
    flipped = value.int ^ (1 << 127)  # DuckDB's UUID: a hugeint with the top bit flipped
    return {
        "text": str(value).encode(),
        "TEXT": str(value).upper().encode(),
        "hex": value.hex.encode(),
        "bytes": value.bytes,
        "bytes reversed": value.bytes[::-1],
        "hugeint": flipped.to_bytes(16, "little"),
        "hugeint big-endian": flipped.to_bytes(16, "big"),
        "hugeint halves": (flipped & (2**64 - 1)).to_bytes(8, "little"),
    }


def found(data_dir: Path, visitors: list[str]) -> list[str]:
    """Where any form of any of ``visitors`` is in any file of ``data_dir``."""
    hits = []
    for path in sorted(p for p in data_dir.rglob("*") if p.is_file()):
        content = path.read_bytes()
        for who in visitors:
            hits += [f"{path.name}: {who} as {form}" for form, pattern in encodings(who).items()
                     if pattern in content]  # fmt: skip
    return hits
