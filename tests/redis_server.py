"""A real redis-server (Debian's), started for a test in its own directory."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import redis

from tests.reports import free_port

REDIS_SERVER = "/usr/bin/redis-server"
# what the shared ledger requires: every write fsynced before Redis answers
DURABLE = ("--appendonly", "yes", "--appendfsync", "always")


def real_clock(environ: Mapping[str, str]) -> dict[str, str]:
    """``environ`` without libfaketime: it cannot load into Debian's redis-server (built
    with jemalloc: libfaketime#130), so under make soak's faketime run Redis keeps the
    real clock while the tests run ahead of it."""
    return {name: value for name, value in environ.items()
            if name != "LD_PRELOAD" and not name.startswith("FAKETIME")}  # fmt: skip


class RedisServer:
    """One redis-server on a port of its own; it can be killed and started again there."""

    def __init__(self, directory: Path, *options: str, durable: bool = True) -> None:
        if shutil.which(REDIS_SERVER) is None:
            raise RuntimeError(f"{REDIS_SERVER} is missing: apt-get install redis-server")
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._options = [*(DURABLE if durable else ()), *options]
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = self.directory / "redis.log"
        self.process = subprocess.Popen(
            [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1",
             "--dir", str(self.directory), "--save", "", "--logfile", str(log),
             *self._options],
            stdout=subprocess.DEVNULL, env=real_clock(os.environ),
        )  # fmt: skip
        client = redis.Redis.from_url(self.url)
        deadline = time.monotonic() + 10
        try:
            while True:
                try:
                    client.ping()
                    return
                except (redis.ConnectionError, redis.BusyLoadingError):
                    if self.process.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError(log.read_text()) from None
                    time.sleep(0.02)
        finally:
            client.close()

    def kill(self) -> None:
        """SIGKILL: what it fsynced survives, as after a crash."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)


def redis_now(url: str) -> datetime:
    """Redis' own wall clock (``TIME``): what its expiries (``EXAT``, TTLs) follow. A test
    that hands the code a manual clock starts it from here, not from a calendar date."""
    client = redis.Redis.from_url(url)
    try:
        seconds, microseconds = client.time()
    finally:
        client.close()
    return datetime.fromtimestamp(seconds + microseconds / 1e6, UTC)


@contextmanager
def redis_server(directory: Path, *options: str, durable: bool = True) -> Iterator[str]:
    """A started redis-server; its URL."""
    server = RedisServer(directory, *options, durable=durable)
    server.start()
    try:
        yield server.url
    finally:
        server.stop()
