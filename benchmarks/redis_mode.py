"""Redis mode against the embedded mode, in one run (docs/scaling.md turns it into capacity).

Two setups on the same machine, each with the same 50 tours and the same wrk load
(``beacons.lua``, 256 connections): the embedded service, one process; and Redis
mode, a redis-server (every write fsynced), a primary draining the stream into its
DuckDB, and one ingest node that wrk loads. The runs alternate; each round's two
runs give a ratio of accepted beacons per second, and the median is reported.

Everything shares the machine's two cores, wrk included: in Redis mode the node's
beacons also cost Redis' and the primary's CPU on the same cores. So besides the
rates, each process' CPU time is read from ``/proc`` around each run and divided by
the beacons accepted: CPU µs per beacon on the ingest node, on Redis and on the
primary, against the embedded process'. Then the primary is stopped, the node takes
beacons into the stream for a while, and the primary is started again: the time it
takes to catch up gives its drain rate.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import redis

from benchmarks.ingest import TOURS, Run, start_tourviews, stop, wrk
from tourviews.ingest.store.drain import backlog

REDIS_SERVER = "/usr/bin/redis-server"
PORTS = {"embedded": 18411, "primary": 18412, "node": 18413, "redis": 18414}
ROUNDS = 3
SECONDS = 8
BACKLOG_SECONDS = 6  # of load into the stream while the primary is stopped
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def start_redis(directory: Path) -> subprocess.Popen[bytes]:
    directory.mkdir(parents=True)
    process = subprocess.Popen(
        [REDIS_SERVER, "--port", str(PORTS["redis"]), "--bind", "127.0.0.1", "--dir",
         str(directory), "--appendonly", "yes", "--appendfsync", "always", "--save", ""],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    client = redis.Redis(port=PORTS["redis"])
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            return process
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                raise RuntimeError("redis-server did not start") from None
            time.sleep(0.05)


def start_node(url: str, secret: str) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [sys.executable, "-m", "tourviews", "ingest", "--port", str(PORTS["node"]),
         "--redis", url, "--trusted-proxy", "127.0.0.1/32"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        env={**os.environ, "TOURVIEWS_SECRET": secret},
    )  # fmt: skip
    assert process.stdout is not None
    line = process.stdout.readline()  # its "listening on" line, once it accepts
    if b"listening on" not in line:
        raise RuntimeError("the ingest node did not start")
    return process


def drained(client: redis.Redis) -> bool:
    return backlog(client) == 0


def bench_redis_mode(seconds: int = SECONDS, rounds: int = ROUNDS) -> dict[str, float] | None:
    if shutil.which("wrk") is None or not Path(REDIS_SERVER).exists():
        print("wrk or redis-server is missing: the Redis mode benchmark is skipped")
        return None
    url = f"redis://127.0.0.1:{PORTS['redis']}/0"
    runs: dict[str, list[Run]] = {"embedded": [], "node": []}
    cpu: dict[str, list[float]] = {"embedded": [], "node": [], "redis": [], "primary": []}
    figures: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        server = start_redis(root / "redis")
        client = redis.Redis(port=PORTS["redis"])
        embedded, _ = start_tourviews(root / "embedded", PORTS["embedded"])
        primary, _ = start_tourviews(root / "primary", PORTS["primary"], "--redis", url)
        secret = (root / "primary" / "secret.key").read_text().strip()
        node = start_node(url, secret)
        time.sleep(1.0)
        try:
            for _ in range(rounds):
                before = cpu_seconds(embedded.pid)
                runs["embedded"].append(run := wrk(f"http://127.0.0.1:{PORTS['embedded']}",
                                                   seconds, 256))  # fmt: skip
                cpu["embedded"].append((cpu_seconds(embedded.pid) - before) / accepted(run))
                pids = {"node": node.pid, "redis": server.pid, "primary": primary.pid}
                before_all = {name: cpu_seconds(pid) for name, pid in pids.items()}
                runs["node"].append(run := wrk(f"http://127.0.0.1:{PORTS['node']}", seconds, 256))
                while not drained(client):  # the primary's share of the work is done
                    time.sleep(0.05)
                for name, pid in pids.items():
                    cpu[name].append((cpu_seconds(pid) - before_all[name]) / accepted(run))
            # the drain rate: a backlog taken while the primary is away, then caught up
            stop(primary)
            piled = wrk(f"http://127.0.0.1:{PORTS['node']}", BACKLOG_SECONDS, 256)
            figures["drain_backlog"] = float(backlog(client))
            started = time.monotonic()
            primary, _ = start_tourviews(root / "primary", PORTS["primary"], "--redis", url,
                                         register=False)  # fmt: skip
            ready, left = time.monotonic(), backlog(client)  # it may have begun already
            while not drained(client):
                time.sleep(0.01)
            figures["drain_per_s"] = left / (time.monotonic() - ready)
            figures["primary_start_s"] = ready - started
            figures["backlog_per_s"] = accepted(piled) / piled.seconds
        finally:
            for process in (node, primary, embedded, server):
                stop(process)
    ratios = [accepted(n) / n.seconds / (accepted(e) / e.seconds)
              for n, e in zip(runs["node"], runs["embedded"], strict=True)]  # fmt: skip
    figures |= {"ratio": statistics.median(ratios), "ratio_low": min(ratios),
                "ratio_high": max(ratios)}  # fmt: skip
    for name, measured in runs.items():
        figures[f"{name}_per_s"] = statistics.median(accepted(r) / r.seconds for r in measured)
        figures[f"{name}_p99"] = statistics.median(r.p99_ms for r in measured)
    for name, each in cpu.items():
        figures[f"{name}_cpu_us"] = statistics.median(each) * 1e6
    figures["cpu_ratio"] = figures["embedded_cpu_us"] / figures["node_cpu_us"]
    figures["tours"] = TOURS
    return figures


def accepted(run: Run) -> int:
    return run.requests - run.refused
