"""Fixtures: a data directory, a manual clock, the app in-process, a real server process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from starlette.testclient import TestClient

from storage.clock import ManualClock
from tourviews.app import TourviewsApp, create_app
from tourviews.settings import Settings

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


def visitor() -> str:
    return str(uuid.uuid4())


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
