"""HTTP ingest under wrk: tourviews against a no-op FastAPI endpoint, side by side.

Both run under uvicorn with the same settings (uvloop, httptools, no access log),
one process each, on loopback; wrk sends the same realistic beacons to both, the
runs alternate, and the medians are compared. Every 204 from tourviews was
committed to DuckDB before it was sent.
"""

from __future__ import annotations

import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import orjson

LUA = Path(__file__).with_name("beacons.lua")
TOURS = 50


@dataclass
class Run:
    requests: int
    seconds: float
    refused: int  # answers other than 2xx/3xx
    p50_ms: float
    p99_ms: float

    @property
    def accepted_per_s(self) -> float:
        return (self.requests - self.refused) / self.seconds


def _ms(text: str) -> float:
    found = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if found is None:
        raise ValueError(f"wrk printed a latency this does not read: {text!r}")
    return float(found.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1e3, "m": 6e4}[found.group(2)]


def wrk(url: str, seconds: int, fresh_agents: bool = False) -> Run:
    env = {**os.environ, "FRESH_AGENTS": "1" if fresh_agents else "0"}
    out = subprocess.run(
        ["wrk", "-t2", "-c64", f"-d{seconds}s", "--latency", "-s", str(LUA), url],
        capture_output=True, text=True, env=env, check=True, timeout=seconds + 60,
    ).stdout  # fmt: skip
    done = re.search(r"(\d+) requests in ([\d.]+)(s|m)", out)
    assert done, out
    refused = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return Run(
        requests=int(done.group(1)),
        seconds=float(done.group(2)) * (60 if done.group(3) == "m" else 1),
        refused=int(refused.group(1)) if refused else 0,
        p50_ms=_ms(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1)),  # type: ignore[union-attr]
        p99_ms=_ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1)),  # type: ignore[union-attr]
    )


def commit_metrics(url: str) -> dict[str, float]:
    """Mean events per commit and mean commit time, from the server's own /metrics."""
    text = httpx.get(f"{url}/metrics").text

    def value(name: str) -> float:
        return float(re.search(rf"^{name} (\S+)$", text, re.M).group(1))  # type: ignore[union-attr]

    commits = value("tourviews_commit_batch_size_count")
    return {
        "batch_mean": value("tourviews_commit_batch_size_sum") / commits,
        "commit_ms": value("tourviews_commit_seconds_sum") / commits * 1000,
    }


def peak_rss_mib(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1)) / 1024  # type: ignore[union-attr]


def _tourviews(*args: str) -> list[str]:
    return [sys.executable, "-m", "tourviews", *args]


def start_tourviews(data_dir: Path, port: int) -> subprocess.Popen[bytes]:
    for n in range(TOURS):
        subprocess.run(_tourviews("tours", "add", f"t{n}", "--org", "bench", "--data",
                                  str(data_dir)), check=True, capture_output=True)  # fmt: skip
    process = subprocess.Popen(
        _tourviews("serve", "--port", str(port), "--data", str(data_dir),
                   "--trusted-proxy", "127.0.0.1/32"),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while not (data_dir / "server.json").exists():
        if time.monotonic() > deadline or process.poll() is not None:
            raise RuntimeError("tourviews did not start")
        time.sleep(0.1)
    return process


def start_noop(port: int) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "benchmarks.noop:app", "--port", str(port),
         "--loop", "uvloop", "--http", "httptools", "--no-access-log", "--log-level", "warning"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    time.sleep(2)
    return process


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    process.wait(30)


def counted(data_dir: Path) -> int:
    out = subprocess.run(
        _tourviews("abuse", "--format", "json", "--data", str(data_dir)),
        capture_output=True, check=True,
    ).stdout  # fmt: skip
    return int(orjson.loads(out)["totals"]["counted"])


def bench_ingest(seconds: int = 8, rounds: int = 2) -> dict[str, float] | None:
    if shutil.which("wrk") is None:
        print("wrk is missing (apt-get install wrk): the HTTP benchmarks are skipped")
        return None
    with tempfile.TemporaryDirectory() as folder:
        data_dir = Path(folder) / "data"
        ours_process = start_tourviews(data_dir, 18401)
        noop_process = start_noop(18402)
        ours, noop, flood = [], [], []
        try:
            for _ in range(rounds):
                noop.append(wrk("http://127.0.0.1:18402", seconds))
                ours.append(wrk("http://127.0.0.1:18401", seconds))
                flood.append(wrk("http://127.0.0.1:18401", seconds, fresh_agents=True))
            ours_rss = peak_rss_mib(ours_process.pid)
            commits = commit_metrics("http://127.0.0.1:18401")
            noop_rss = peak_rss_mib(noop_process.pid)
        finally:
            stop(noop_process)
            stop(ours_process)
        acknowledged = sum(r.requests - r.refused for r in ours + flood)
        stored = counted(data_dir)

    def median(runs: list[Run], attribute: str) -> float:
        return statistics.median(getattr(run, attribute) for run in runs)

    return {
        "ours_per_s": median(ours, "accepted_per_s"),
        "noop_per_s": median(noop, "accepted_per_s"),
        "flood_per_s": median(flood, "accepted_per_s"),
        "ours_p50": median(ours, "p50_ms"),
        "ours_p99": median(ours, "p99_ms"),
        "noop_p50": median(noop, "p50_ms"),
        "noop_p99": median(noop, "p99_ms"),
        "flood_p50": median(flood, "p50_ms"),
        "flood_p99": median(flood, "p99_ms"),
        "refused": sum(r.refused for r in ours + flood),
        "acknowledged": acknowledged,
        "stored": stored,
        "ours_rss": ours_rss,
        **commits,
        "noop_rss": noop_rss,
    }
