"""``--geoip`` on real processes: ``serve`` embedded, and in Redis mode the primary and an
``ingest`` node, each counting the country of the address a beacon came from."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import orjson

from tests.conftest import CHROME, PROXY, StartServer, register, start_server, visitor
from tests.countries import DE, KZ, KZ_V6, geoip_database
from tests.redis_server import redis_server
from tests.tourviews.test_redis_mode import SECRET, command, start_nodes, wait_until_drained


def send(url: str, address: str) -> int:
    body = orjson.dumps({"tour": "t1", "visitor": visitor()})
    headers = {"Content-Type": "text/plain", "User-Agent": CHROME, "X-Forwarded-For": address}
    return httpx.post(f"{url}/v1/beacon", content=body, headers=headers).status_code


def countries(document: dict[str, Any]) -> dict[str, int]:
    return {row["key"]: row["views"] for row in document["breakdown"]["country"]}


def test_serve_counts_the_country_of_each_view(
    data_dir: Path, start: StartServer, tmp_path: Path
) -> None:
    register(data_dir)
    server = start(data_dir, *PROXY, "--geoip", str(geoip_database(tmp_path / "geoip")))
    for address in (KZ, KZ_V6, DE, "10.0.0.7"):
        assert send(server.url, address) == 204
    assert server.terminate() == 0
    stats = subprocess.run(
        [sys.executable, "-m", "tourviews", "stats", "t1", "--format", "json", "--data",
         str(data_dir)],
        capture_output=True, check=True,
    )  # fmt: skip
    assert countries(orjson.loads(stats.stdout)) == {"KZ": 2, "DE": 1, "(unknown)": 1}


def test_an_ingest_node_and_the_primary_count_countries_in_redis_mode(tmp_path: Path) -> None:
    database = str(geoip_database(tmp_path / "geoip"))
    with redis_server(tmp_path / "redis") as url:
        primary = start_server(tmp_path / "data", "--redis", url, *PROXY, "--geoip", database,
                               env=SECRET)  # fmt: skip
        nodes = []
        try:
            printed = command(tmp_path / "data", "tokens", "create", "--org", "acme")
            token = re.search(r"tv_[A-Za-z0-9_-]+", printed)
            assert token is not None
            command(tmp_path / "data", "tours", "add", "t1", "--org", "acme")
            nodes = start_nodes(url, [tmp_path / "node.log"], "--geoip", database)
            node = nodes[0][1]
            deadline = time.monotonic() + 10
            while send(node, KZ) == 404:  # the node follows the new tour within a second
                assert time.monotonic() < deadline
                time.sleep(0.2)
            for address in (KZ_V6, "10.0.0.7"):
                assert send(node, address) == 204
            assert send(primary.url, DE) == 204  # the primary takes beacons too
            wait_until_drained(url)
            answer = httpx.get(f"{primary.url}/v1/tours/t1/stats",
                               headers={"Authorization": f"Bearer {token.group(0)}"})  # fmt: skip
            assert answer.status_code == 200, answer.text
            assert countries(answer.json()) == {"KZ": 2, "DE": 1, "(unknown)": 1}
        finally:
            for process, _ in nodes:
                process.kill()
                process.wait(10)
            primary.kill()
