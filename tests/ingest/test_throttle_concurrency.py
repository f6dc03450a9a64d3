"""Rate limits are exact under concurrency, on a real server with real sockets."""

from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import orjson

from tests.conftest import CHROME, StartServer, visitor


def register(data_dir: Path, tour: str) -> None:
    command = [sys.executable, "-m", "tourviews", "tours", "add", tour, "--org", "acme",
               "--data", str(data_dir)]  # fmt: skip
    subprocess.run(command, check=True, capture_output=True)


def burst(url: str, bodies: list[bytes]) -> list[int]:
    """Send every body at once, each on its own connection."""

    def one(body: bytes) -> int:
        headers = {"Content-Type": "text/plain", "User-Agent": CHROME}
        return httpx.post(f"{url}/v1/beacon", content=body, headers=headers, timeout=30).status_code

    with ThreadPoolExecutor(max_workers=len(bodies)) as pool:
        return list(pool.map(one, bodies))


def test_concurrent_beacons_of_one_visitor_admit_exactly_its_burst(
    data_dir: Path, start: StartServer
) -> None:
    register(data_dir, "t1")
    # A bucket that does not refill during the test: exactly the burst may pass.
    server = start(data_dir, "--visitor-rate", "0.001", "--visitor-burst", "30")
    body = orjson.dumps({"tour": "t1", "visitor": visitor()})
    statuses = burst(server.url, [body] * 80)
    assert statuses.count(204) == 30
    assert statuses.count(429) == 50


def test_concurrent_beacons_to_one_tour_admit_exactly_its_burst(
    data_dir: Path, start: StartServer
) -> None:
    register(data_dir, "t1")
    server = start(data_dir, "--tour-rate", "0.001", "--tour-burst", "25", "--ip-burst", "1000")
    bodies = [orjson.dumps({"tour": "t1", "visitor": visitor()}) for _ in range(80)]
    statuses = burst(server.url, bodies)
    assert statuses.count(204) == 25
    assert statuses.count(429) == 55
