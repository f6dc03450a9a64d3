"""A real ``tourviews serve`` process: draining on SIGTERM, privacy of everything it
writes and prints, the trusted-proxy rule on real sockets (SIGKILL: tests/crash)."""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import duckdb
import httpx
import orjson
import pytest

from tests import referrers
from tests.conftest import (
    CHROME,
    PROXY,
    Load,
    StartServer,
    counted_views,
    register,
    stored_visitors,
    visitor,
)
from tests.countries import geoip_database


def test_sigterm_commits_every_acknowledged_beacon_then_exits_cleanly(
    data_dir: Path, start: StartServer
) -> None:
    register(data_dir)
    server = start(data_dir, *PROXY)
    with Load(server.url, workers=8) as load:
        time.sleep(0.5)
        code = server.terminate()
    assert code == 0
    assert not (data_dir / "server.json").exists()
    assert load.acknowledged
    assert stored_visitors(data_dir) == dict.fromkeys(load.acknowledged, 1)


MARK_V4 = "203.0.113.77"
MARK_V6 = "2001:db8:dead:beef::77"
MARK_UA = "MarkerAgent7f3q"


def markers() -> list[bytes]:
    """Every spelling of the marker address and user-agent that could land in a file."""
    found = [MARK_UA.encode(), MARK_UA.encode("utf-16-le")]
    for address in (MARK_V4, MARK_V6):
        ip = ipaddress.ip_address(address)
        found += [address.encode(), ip.exploded.encode(), ip.packed, address.encode("utf-16-le")]
    return found


def leaks(blobs: Iterable[tuple[str, bytes]]) -> list[str]:
    return [f"{name}: {marker!r}" for name, blob in blobs for marker in markers() if marker in blob]


def test_marker_scan_finds_a_planted_marker(tmp_path: Path) -> None:
    (tmp_path / "planted").write_bytes(b"..." + ipaddress.ip_address(MARK_V6).packed + b"...")
    assert leaks([("planted", (tmp_path / "planted").read_bytes())]) != []


@pytest.mark.parametrize("geoip", [False, True], ids=["", "with-geoip"])
def test_no_raw_address_or_user_agent_reaches_disk_or_output(
    data_dir: Path, start: StartServer, tmp_path: Path, geoip: bool
) -> None:
    register(data_dir)
    # with --geoip the markers' country is looked up (and kept) before the hash
    database = geoip_database(tmp_path / "geoip", {"KZ": [f"{MARK_V4}/32", f"{MARK_V6}/128"]})
    server = start(data_dir, *PROXY, *(("--geoip", str(database)) if geoip else ()))
    agent = f"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 {MARK_UA} Chrome/131.0"
    bot = f"Mozilla/5.0 (compatible; Googlebot/2.1; {MARK_UA})"
    url = f"{server.url}/v1/beacon"
    with httpx.Client() as client:
        for address in (MARK_V4, MARK_V6, f"{MARK_V6}, 127.0.0.1"):
            for user_agent in (agent, bot):
                headers = {"X-Forwarded-For": address, "User-Agent": user_agent,
                           "Content-Type": "text/plain"}  # fmt: skip
                good = orjson.dumps({"tour": "t1", "visitor": visitor()})
                assert client.post(url, content=good, headers=headers).status_code == 204
                scene = orjson.dumps({"tour": "t1", "visitor": visitor(), "event": "scene",
                                      "scene": "lobby"})  # fmt: skip
                assert client.post(url, content=scene, headers=headers).status_code == 204
                for body, content_type in (
                    (b"{bad json " + MARK_UA.encode(), "text/plain"),
                    (orjson.dumps({"tour": "nosuch", "visitor": visitor()}), "text/plain"),
                    (orjson.dumps({"tour": MARK_UA, "visitor": MARK_V4}), "text/plain"),
                    (good, "application/xml"),
                    (b"x" * 4_000, "text/plain"),
                ):
                    answer = client.post(
                        url, content=body, headers=headers | {"Content-Type": content_type}
                    )
                    assert 400 <= answer.status_code < 500
    assert server.terminate() == 0
    files = [(str(path), path.read_bytes()) for path in data_dir.rglob("*") if path.is_file()]
    assert any(name.endswith(".duckdb") for name, _ in files)
    assert counted_views(data_dir, "t1") == 3  # the events are there, the markers are not
    with duckdb.connect(str(data_dir / "tourviews.duckdb"), read_only=True) as con:
        countries = con.execute("SELECT DISTINCT country FROM events").fetchall()
    assert countries == [("KZ",) if geoip else (None,)]
    assert leaks(files) == []
    assert leaks([("server output", server.output())]) == []


def test_referrer_scan_finds_a_planted_mark() -> None:
    assert referrers.leaks([("planted", referrers.REFERRERS[1].encode())]) != []


def test_no_referrer_path_or_query_reaches_disk_or_output(
    data_dir: Path, start: StartServer
) -> None:
    register(data_dir)
    server = start(data_dir, *PROXY)
    headers = {"Content-Type": "text/plain", "User-Agent": CHROME}
    with httpx.Client() as client:
        for body, status in referrers.bodies():
            answer = client.post(f"{server.url}/v1/beacon", content=body, headers=headers)
            assert answer.status_code == status, answer.text
            assert referrers.leaks([("answer", answer.content)]) == []
    assert server.terminate() == 0
    files = [(str(path), path.read_bytes()) for path in data_dir.rglob("*") if path.is_file()]
    with duckdb.connect(str(data_dir / "tourviews.duckdb"), read_only=True) as con:
        kept = con.execute("SELECT source, count(*) FROM events GROUP BY ALL ORDER BY 1")
        assert kept.fetchall() == [(referrers.HOST, 3), (None, 1)]  # the host, and the scene
    assert referrers.leaks(files) == []
    assert referrers.leaks([("server output", server.output())]) == []


def test_forwarded_for_from_an_untrusted_peer_does_not_split_one_address(
    data_dir: Path, start: StartServer
) -> None:
    register(data_dir)
    frozen = ("--ip-rate", "0.001")  # the per-address bucket does not refill during the test
    untrusted = start(data_dir, *frozen)  # no --trusted-proxy: X-Forwarded-For is ignored
    statuses = send_forged(untrusted.url, 101)
    assert statuses.count(204) == 100  # one address: its burst of 100, then 429
    assert statuses[-1] == 429
    untrusted.terminate()

    trusted = start(data_dir, *frozen, *PROXY)  # behind a trusted proxy: 101 addresses
    assert send_forged(trusted.url, 101) == [204] * 101


def send_forged(url: str, count: int) -> list[int]:
    def one(n: int) -> int:
        headers = {"Content-Type": "text/plain", "User-Agent": CHROME,
                   "X-Forwarded-For": f"198.51.100.{n % 250}, 192.0.2.{n % 250}"}  # fmt: skip
        body = orjson.dumps({"tour": "t1", "visitor": visitor()})
        return httpx.post(f"{url}/v1/beacon", content=body, headers=headers).status_code

    with ThreadPoolExecutor(max_workers=1) as pool:  # in order: the last one is the 101st
        return list(pool.map(one, range(count)))
