"""Redis mode with real processes: a redis-server, a primary, two ingest nodes.

Beacons go to both nodes over HTTP; the primary drains the stream into DuckDB and
answers the stats API, which is what the tests read.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb
import httpx
import orjson
import pytest
import redis

from tests import referrers
from tests.conftest import CHROME, ServerProcess, counted_views, found, start_server
from tests.redis_server import RedisServer, redis_server
from tourviews.ingest.store.drain import backlog

SECRET = {"TOURVIEWS_SECRET": "redis-mode-test-secret-" + "s" * 20}
PROXY = ("--trusted-proxy", "127.0.0.1/32")


@dataclass
class Cluster:
    primary: ServerProcess
    nodes: list[str]  # the ingest nodes' URLs
    redis_url: str
    token: str

    def settled(self) -> None:
        """Wait until the primary has committed every entry of the stream."""
        wait_until_drained(self.redis_url)

    def views(self, tour: str) -> int:
        self.settled()
        answer = httpx.get(f"{self.primary.url}/v1/tours/{tour}/stats",
                           headers={"Authorization": f"Bearer {self.token}"})  # fmt: skip
        assert answer.status_code == 200, answer.text
        return int(answer.json()["totals"]["views"])


def start_nodes(
    redis_url: str, logs: list[Path], *args: str
) -> list[tuple[subprocess.Popen[bytes], str]]:
    """``tourviews ingest`` processes, started together; each with the URL it listens on."""
    processes = []
    for log in logs:
        with log.open("wb") as sink:
            processes.append(subprocess.Popen(
                [sys.executable, "-m", "tourviews", "ingest", "--port", "0", "--redis",
                 redis_url, *PROXY, *args],
                stdout=sink, stderr=subprocess.STDOUT, env={**os.environ, **SECRET},
            ))  # fmt: skip
    started = []
    deadline = time.monotonic() + 30
    for process, log in zip(processes, logs, strict=True):
        while True:
            if process.poll() is not None or time.monotonic() > deadline:
                for each in processes:
                    each.kill()
                raise RuntimeError(f"ingest node did not start: {log.read_text()}")
            found = re.search(r"listening on (http://\S+)", log.read_text())
            if found:
                started.append((process, found.group(1)))
                break
            time.sleep(0.05)
    return started


def command(data_dir: Path, *args: str) -> str:
    """A ``tourviews`` command with the instance secret; what it printed."""
    done = subprocess.run([sys.executable, "-m", "tourviews", *args, "--data", str(data_dir)],
                          check=True, capture_output=True, env={**os.environ, **SECRET})  # fmt: skip
    return done.stdout.decode()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    root = tmp_path_factory.mktemp("redis-mode")
    with redis_server(root / "redis") as url:
        # an address's burst of 100 refills at one a minute: exact while a test sends
        primary = start_server(root / "data", "--redis", url, *PROXY, "--ip-rate", "1",
                               env=SECRET)  # fmt: skip
        nodes: list[subprocess.Popen[bytes]] = []
        try:
            printed = command(root / "data", "tokens", "create", "--org", "ops", "--admin")
            found = re.search(r"tv_[A-Za-z0-9_-]+", printed)
            assert found is not None
            admin = httpx.Client(base_url=primary.url,
                                 headers={"Authorization": f"Bearer {found.group(0)}"})  # fmt: skip
            for tour in ("t1", "t2", "t3", "t4", "t5"):
                assert admin.put(f"/v1/admin/tours/{tour}", json={"org": "acme"}).is_success
            started = start_nodes(url, [root / f"node-{i}.log" for i in range(2)])
            nodes = [process for process, _ in started]
            time.sleep(1.0)  # the registered tours reach the nodes within a second
            yield Cluster(primary, [node_url for _, node_url in started], url, found.group(0))
        finally:
            for process in nodes:
                process.kill()
                process.wait(10)
            primary.kill()


_CLIENTS: dict[str, httpx.Client] = {}  # kept alive: a new connection each costs more


def beacon(url: str, address: str, tour: str, who: str | None = None) -> int:
    client = _CLIENTS.get(url)
    if client is None:
        client = _CLIENTS[url] = httpx.Client(base_url=url)
    body = orjson.dumps({"tour": tour, "visitor": who or str(uuid.uuid4())})
    headers = {"Content-Type": "text/plain", "User-Agent": CHROME, "X-Forwarded-For": address}
    return client.post("/v1/beacon", content=body, headers=headers).status_code


def test_one_visitors_repeats_across_two_nodes_count_once(cluster: Cluster) -> None:
    who = str(uuid.uuid4())
    answers = [beacon(cluster.nodes[i % 2], "192.0.2.1", "t1", who) for i in range(10)]
    assert answers == [204] * 10
    assert cluster.views("t1") == 1


def test_two_hundred_ids_from_one_address_across_two_nodes_count_fifty(cluster: Cluster) -> None:
    answers = Counter(beacon(cluster.nodes[i % 2], "192.0.2.2", "t2") for i in range(200))
    assert answers == {204: 100, 429: 100}  # the address's burst; of those, the guard's 50
    assert cluster.views("t2") == 50


def test_one_addresss_burst_holds_across_two_nodes(cluster: Cluster) -> None:
    tours = ("t3", "t4")  # the address's limit spans tours; 51 new IDs on none of them
    answers = [beacon(cluster.nodes[i % 2], "192.0.2.3", tours[i % 2]) for i in range(101)]
    assert Counter(answers) == {204: 100, 429: 1}
    assert answers[-1] == 429
    assert cluster.views("t3") + cluster.views("t4") == 100


def test_the_primary_serves_beacons_too(cluster: Cluster) -> None:
    who = str(uuid.uuid4())
    assert beacon(cluster.primary.url, "192.0.2.4", "t5", who) == 204
    assert beacon(cluster.nodes[0], "192.0.2.4", "t5", who) == 204  # a duplicate
    assert cluster.views("t5") == 1


def node_beacons(cluster: Cluster) -> Counter[str]:
    """The nodes' beacons by outcome, as the primary's /metrics shows them."""
    text = httpx.get(f"{cluster.primary.url}/metrics",
                     headers={"Authorization": f"Bearer {cluster.token}"}).text  # fmt: skip
    found = re.findall(r'^tourviews_node_beacons_total\{node="\w+",outcome="(\w+)"\} (\S+)$',
                       text, re.MULTILINE)  # fmt: skip
    totals: Counter[str] = Counter()
    for outcome, count in found:
        totals[outcome] += int(float(count))
    return totals


def test_the_primarys_metrics_show_the_nodes_beacons(cluster: Cluster) -> None:
    time.sleep(1.5)  # the beacons of the tests before are reported
    before = node_beacons(cluster)
    who = str(uuid.uuid4())
    answers = [beacon(cluster.nodes[i % 2], "192.0.2.5", "t5", who) for i in range(4)]
    assert answers == [204] * 4
    deadline = time.monotonic() + 10
    while (after := node_beacons(cluster)) - before != {"counted": 1, "duplicate": 3}:
        assert time.monotonic() < deadline, after - before  # reported each second
        time.sleep(0.2)
    cluster.settled()
    text = httpx.get(f"{cluster.primary.url}/metrics",
                     headers={"Authorization": f"Bearer {cluster.token}"}).text  # fmt: skip
    commits = re.search(r"^tourviews_commit_batch_size_count (\S+)$", text, re.MULTILINE)
    assert commits and float(commits.group(1)) > 0, "the drain's commits are not measured"
    assert "\ntourviews_stream_backlog 0.0\n" in text  # settled: all committed


def tourviews(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tourviews", *args], capture_output=True,
                          text=True, timeout=60, env={**os.environ, **(env or {})})  # fmt: skip


def test_a_redis_that_does_not_fsync_every_write_is_refused(tmp_path: Path) -> None:
    with redis_server(tmp_path / "redis", durable=False) as url:
        done = tourviews("serve", "--port", "0", "--data", str(tmp_path / "data"), "--redis", url)
        assert done.returncode == 1
        assert done.stderr.startswith("tourviews: error: Redis must fsync every write")
        assert "--redis-durability relaxed" in done.stderr
        assert "Traceback" not in done.stderr
        assert not (tmp_path / "data" / "tourviews.duckdb").exists()  # refused before anything


def test_an_unreachable_redis_is_one_line(tmp_path: Path) -> None:
    done = tourviews("ingest", "--port", "0", "--redis", "redis://127.0.0.1:1/0", env=SECRET)
    assert done.returncode == 1
    assert done.stderr.startswith("tourviews: error: cannot reach Redis")
    assert done.stderr.count("\n") == 1


def test_an_ingest_node_needs_the_primarys_secret_and_the_primary(tmp_path: Path) -> None:
    with redis_server(tmp_path / "redis") as url:
        no_secret = tourviews("ingest", "--port", "0", "--redis", url,
                              env={"TOURVIEWS_SECRET": ""})  # fmt: skip
        assert no_secret.returncode == 1
        assert no_secret.stderr.startswith("tourviews: error: TOURVIEWS_SECRET must be set")
        no_primary = tourviews("ingest", "--port", "0", "--redis", url, env=SECRET)
        assert no_primary.returncode == 1
        assert "no primary has started on this Redis" in no_primary.stderr
        missing = tourviews("ingest", env={**SECRET, "TOURVIEWS_REDIS": ""})
        assert missing.stderr == "tourviews: error: --redis URL is required (or TOURVIEWS_REDIS)\n"
        typo = tourviews("ingest", "--redis", "http://127.0.0.1:6379", env=SECRET)
        assert typo.returncode == 1
        assert (
            typo.stderr == "tourviews: error: --redis must be a URL like redis://127.0.0.1:6379/0\n"
        )


def test_beacons_answer_503_while_redis_is_away_and_204_once_it_is_back(tmp_path: Path) -> None:
    server = RedisServer(tmp_path / "redis")
    server.start()
    primary = start_server(tmp_path / "data", "--redis", server.url, *PROXY, env=SECRET)
    try:
        command(tmp_path / "data", "tours", "add", "t1", "--org", "acme")
        time.sleep(1.0)
        who = str(uuid.uuid4())
        assert beacon(primary.url, "192.0.2.20", "t1", who) == 204
        server.kill()
        client = _CLIENTS[primary.url]
        body = orjson.dumps({"tour": "t1", "visitor": str(uuid.uuid4())})
        away = client.post("/v1/beacon", content=body,
                           headers={"Content-Type": "text/plain", "User-Agent": CHROME})  # fmt: skip
        assert away.status_code == 503
        assert away.headers["retry-after"] == "1"
        assert client.get("/healthz").status_code == 503
        server.start()  # the same port and files: what it fsynced is there
        deadline = time.monotonic() + 20
        # healthy again before any beacon: a load balancer would send it none till then
        while client.get("/healthz").status_code != 200:
            assert time.monotonic() < deadline, "the service did not recover by itself"
            time.sleep(0.2)
        assert beacon(primary.url, "192.0.2.21", "t1") == 204
        assert beacon(primary.url, "192.0.2.20", "t1", who) == 204  # a duplicate still
        assert primary.terminate() == 0
        assert counted_views(tmp_path / "data", "t1") == 2  # the first and the recovery's
    finally:
        if primary.process.poll() is None:
            primary.kill()
        server.stop()


def test_an_erased_visitor_leaves_no_byte_in_the_data_or_in_redis(tmp_path: Path) -> None:
    server = RedisServer(tmp_path / "redis")
    server.start()
    data = tmp_path / "data"
    primary = start_server(data, "--redis", server.url, *PROXY, env=SECRET)
    erased, kept = str(uuid.uuid4()), [str(uuid.uuid4()) for _ in range(30)]
    try:
        command(data, "tours", "add", "t1", "--org", "acme")
        time.sleep(1.0)
        for who in (erased, *kept):
            assert beacon(primary.url, "192.0.2.30", "t1", who) == 204
        wait_until_drained(server.url)
        assert found(server.directory, [erased]), "the append-only file held no beacon"
        forget = _CLIENTS[primary.url].post("/v1/visitor/forget", content=orjson.dumps(
            {"visitor": erased}), headers={"Content-Type": "text/plain"})  # fmt: skip
        assert forget.status_code == 204
        rewrites = int(redis.Redis.from_url(server.url).info("persistence")["aof_rewrites"])
        command(data, "compact")  # through the server: the database, then Redis' file
        wait_for_rewrite(server.url, rewrites)
        assert found(server.directory, [erased]) == []
        assert primary.terminate() == 0
        assert found(data, [erased]) == []
        assert found(data, kept), "the scan finds what is there"
    finally:
        if primary.process.poll() is None:
            primary.kill()
        server.stop()


def test_no_referrer_path_or_query_reaches_the_data_redis_or_output(tmp_path: Path) -> None:
    server = RedisServer(tmp_path / "redis")
    server.start()
    data = tmp_path / "data"
    primary = start_server(data, "--redis", server.url, *PROXY, env=SECRET)
    try:
        command(data, "tours", "add", "t1", "--org", "acme")
        time.sleep(1.0)
        (node, url), *_ = start_nodes(server.url, [tmp_path / "node.log"])
        headers = {"Content-Type": "text/plain", "User-Agent": CHROME}
        for i, (body, status) in enumerate(referrers.bodies()):
            sent = httpx.post(f"{(url, primary.url)[i % 2]}/v1/beacon", content=body,
                              headers=headers | {"X-Forwarded-For": f"192.0.2.{i}"})  # fmt: skip
            assert sent.status_code == status, sent.text
        wait_until_drained(server.url)
        node.terminate()
        node.wait(10)
        assert primary.terminate() == 0
        with duckdb.connect(str(data / "tourviews.duckdb"), read_only=True) as con:
            kept = con.execute("SELECT source FROM events WHERE kind = 'view'").fetchall()
        assert kept == [(referrers.HOST,)] * 3
        files = [(str(p), p.read_bytes()) for d in (data, server.directory)
                 for p in d.rglob("*") if p.is_file()]  # fmt: skip
        in_redis = [blob for name, blob in files if name.startswith(str(server.directory))]
        assert any(referrers.HOST.encode() in blob for blob in in_redis)  # the scan reaches it
        output = [("primary", primary.output()), ("node", (tmp_path / "node.log").read_bytes())]
        assert referrers.leaks(files + output) == []
    finally:
        if primary.process.poll() is None:
            primary.kill()
        server.stop()


def wait_until_drained(url: str) -> None:
    """Until the primary has committed every entry of the stream."""
    client = redis.Redis.from_url(url)
    deadline = time.monotonic() + 20
    while backlog(client):
        assert time.monotonic() < deadline, "the primary did not drain the stream"
        time.sleep(0.05)


def wait_for_rewrite(url: str, before: int) -> None:
    """Until Redis has rewritten its append-only file once more than ``before`` times
    (it does in the background)."""
    client = redis.Redis.from_url(url)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        info = client.info("persistence")
        done = not info["aof_rewrite_in_progress"] and not info["aof_rewrite_scheduled"]
        if done and info["aof_last_bgrewrite_status"] == "ok" and info["aof_rewrites"] > before:
            return
        time.sleep(0.05)
    raise AssertionError("Redis did not rewrite its append-only file")


def test_a_switch_to_redis_mode_keeps_each_tours_scene_and_source_bounds(tmp_path: Path) -> None:
    data = tmp_path / "data"
    embedded = start_server(data, *PROXY, "--max-scenes", "3", env=SECRET)
    try:
        command(data, "tours", "add", "t1", "--org", "acme")
        who = str(uuid.uuid4())
        client = _CLIENTS.get(embedded.url) or httpx.Client(base_url=embedded.url)
        assert beacon(embedded.url, "192.0.2.40", "t1", who) == 204
        for scene in ("lobby", "kitchen", "garden"):
            sent = client.post("/v1/beacon", content=orjson.dumps(
                {"tour": "t1", "visitor": who, "event": "scene", "scene": scene}),
                headers={"Content-Type": "text/plain", "User-Agent": CHROME})  # fmt: skip
            assert sent.status_code == 204
        sent = client.post("/v1/beacon", content=orjson.dumps(
            {"tour": "t1", "visitor": str(uuid.uuid4()), "referrer": "https://vk.com/x"}),
            headers={"Content-Type": "text/plain", "User-Agent": CHROME})  # fmt: skip
        assert sent.status_code == 204
        assert embedded.terminate() == 0
    finally:
        if embedded.process.poll() is None:
            embedded.kill()
    with redis_server(tmp_path / "redis") as url:
        primary = start_server(data, "--redis", url, *PROXY, "--max-scenes", "3", env=SECRET)
        try:
            time.sleep(0.5)
            names = redis.Redis.from_url(url).smembers("tv:{0}:sc:t1")
            assert names == {b"lobby", b"kitchen", b"garden"}  # the bound is full: no fourth
            assert redis.Redis.from_url(url).smembers("tv:{0}:so:t1") == {b"vk.com"}
        finally:
            primary.kill()


def test_a_node_with_another_secret_and_a_second_primary_are_refused(
    cluster: Cluster, tmp_path: Path
) -> None:
    other = {"TOURVIEWS_SECRET": "another-instance-secret-" + "o" * 20}
    node = tourviews("ingest", "--port", "0", "--redis", cluster.redis_url, env=other)
    assert node.returncode == 1
    assert node.stderr.startswith("tourviews: error: TOURVIEWS_SECRET is not the primary's")
    second = tourviews("serve", "--port", "0", "--data", str(tmp_path / "other"),
                       "--redis", cluster.redis_url, env=SECRET)  # fmt: skip
    assert second.returncode == 1
    assert second.stderr.startswith("tourviews: error: another primary holds this Redis")
    assert cluster.views("t1") >= 0  # the first primary still answers
    assert beacon(cluster.nodes[0], "192.0.2.50", "t5") == 204  # its tours still stand


def test_serve_workers_mistakes_are_one_line(tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    alone = tourviews("serve", "--port", "0", "--data", data, "--workers", "2")
    assert alone.stderr == (
        "tourviews: error: --workers N needs --redis URL: the workers share their state "
        "through Redis (docs/scaling.md)\n"
    )
    redis = "redis://127.0.0.1:1/0"
    quick = tourviews("serve", "--port", "0", "--data", data, "--redis", redis, "--workers",
                      "2", "--quickstart")  # fmt: skip
    assert quick.stderr == "tourviews: error: --quickstart runs one process: leave out --workers\n"
    deep = tmp_path / ("d" * 100)
    with redis_server(tmp_path / "redis") as url:
        long = tourviews("serve", "--port", "0", "--data", str(deep), "--redis", url,
                         "--workers", "2", env=SECRET)  # fmt: skip
    assert long.returncode == 1
    assert long.stderr.startswith("tourviews: error: the data directory's path is too long")
    assert long.stderr.count("\n") == 1
    assert not deep.exists()  # refused before anything is created
