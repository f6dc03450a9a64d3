"""HTTP ingest under wrk: tourviews beside a no-op FastAPI endpoint and a naive build.

All three run under uvicorn with the same settings (uvloop, httptools, no access
log), one process each, on loopback; wrk sends the same realistic beacons to each,
the runs alternate, and each round's two runs give a ratio: the median of those is
reported, with their range. Every 204 from tourviews was
committed to DuckDB before it was sent.

Two loads. With 256 connections (many browsers at once) commits fill up and the
server runs out of CPU: that is its capacity. With 64, each connection waits for
its commit before it sends again, so half of them wait on the commit in flight and
half on the next: the rate is bounded by commit latency, not by CPU.
"""

from __future__ import annotations

import math
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

from tourviews.ingest.rules.steps import SILENT_DROPS

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


def wrk(url: str, seconds: int, connections: int, fresh_agents: bool = False) -> Run:
    env = {**os.environ, "FRESH_AGENTS": "1" if fresh_agents else "0"}
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(LUA), url],
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


def commit_sums(url: str, token: str) -> tuple[float, float, float]:
    """(commits, events committed, seconds committing) so far, from the server's /metrics."""
    text = httpx.get(f"{url}/metrics", headers={"Authorization": f"Bearer {token}"}).text

    def value(name: str) -> float:
        return float(re.search(rf"^{name} (\S+)$", text, re.M).group(1))  # type: ignore[union-attr]

    return (
        value("tourviews_commit_batch_size_count"),
        value("tourviews_commit_batch_size_sum"),
        value("tourviews_commit_seconds_sum"),
    )


def cpu_ticks() -> tuple[int, int]:
    """(ticks stolen by the hypervisor, all ticks) of this machine so far, from /proc/stat."""
    fields = [int(n) for n in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (fields[7] if len(fields) > 7 else 0), sum(fields[:8])


def peak_rss_mib(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1)) / 1024  # type: ignore[union-attr]


def _tourviews(*args: str) -> list[str]:
    return [sys.executable, "-m", "tourviews", *args]


def start_tourviews(
    data_dir: Path, port: int, *serve_args: str, register: bool = True
) -> tuple[subprocess.Popen[bytes], str]:
    """The server, and an admin token for its /metrics (``register``: first, the tours)."""
    token = ""
    if register:
        for n in range(TOURS):
            subprocess.run(_tourviews("tours", "add", f"t{n}", "--org", "bench", "--data",
                                      str(data_dir)), check=True, capture_output=True)  # fmt: skip
        token = subprocess.run(
            _tourviews("tokens", "create", "--org", "bench", "--admin", "--data", str(data_dir)),
            check=True, capture_output=True, text=True,
        ).stdout.strip()  # fmt: skip
    process = subprocess.Popen(
        _tourviews("serve", "--port", str(port), "--data", str(data_dir),
                   "--trusted-proxy", "127.0.0.1/32", *serve_args),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while not (data_dir / "server.json").exists():
        if time.monotonic() > deadline or process.poll() is not None:
            raise RuntimeError("tourviews did not start")
        time.sleep(0.1)
    return process, token


def start_uvicorn(
    app: str, port: int, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """A baseline under the same uvicorn settings as ``tourviews serve``."""
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", app, "--port", str(port),
         "--loop", "uvloop", "--http", "httptools", "--no-access-log", "--log-level", "warning"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, **(env or {})},
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
            return process
        except httpx.HTTPError:
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError(f"{app} did not start") from None
            time.sleep(0.1)


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    process.wait(30)


def counted(data_dir: Path) -> int:
    """Beacons stored: as events (counted), or as the counters of those answered 204 but
    not counted (an engaged time whose view was refused is outside a visit)."""
    out = subprocess.run(
        _tourviews("abuse", "--format", "json", "--data", str(data_dir)),
        capture_output=True, check=True,
    ).stdout  # fmt: skip
    totals = orjson.loads(out)["totals"]
    return int(totals["counted"]) + sum(int(totals[outcome]) for outcome in SILENT_DROPS)


def round_ratios(key: str, runs: list[Run], bases: list[Run]) -> dict[str, float]:
    """The median and range of each round's ratio; ``<key>_failed`` counts the rounds whose
    base run accepted nothing, which give no ratio (all failed: the figures are NaN)."""
    ratios = [a.accepted_per_s / b.accepted_per_s
              for a, b in zip(runs, bases, strict=True) if b.accepted_per_s > 0]  # fmt: skip
    failed = float(len(runs) - len(ratios))
    if not ratios:
        return {key: math.nan, f"{key}_low": math.nan, f"{key}_high": math.nan,
                f"{key}_failed": failed}  # fmt: skip
    return {key: statistics.median(ratios), f"{key}_low": min(ratios),
            f"{key}_high": max(ratios), f"{key}_failed": failed}  # fmt: skip


# Each round runs these in order: (name, server, connections, every user-agent new).
PLAN = (
    ("noop", "noop", 256, False),
    ("ours", "ours", 256, False),
    ("flood", "ours", 256, True),
    ("naive", "naive", 256, False),
    ("noop_64", "noop", 64, False),
    ("ours_64", "ours", 64, False),
)
PORTS = {"ours": 18401, "noop": 18402, "naive": 18403}
# Ratios of accepted rates, (name, base): the two runs of each round give one, so the
# machine's drift between rounds cancels out; the median is reported.
RATIOS = (("ours", "noop"), ("ours_64", "noop_64"), ("flood", "ours"), ("ours", "naive"))


ROUNDS = 5
SECONDS = 8  # per run


def bench_ingest(seconds: int = SECONDS, rounds: int = ROUNDS) -> dict[str, float] | None:
    """Medians per PLAN entry (``<name>_per_s``, ``_p50``, ``_p99``), ratios per round
    (``<name>_vs_<base>``, with ``_low`` and ``_high``), memory, integrity."""
    if shutil.which("wrk") is None:
        print("wrk is missing (apt-get install wrk): the HTTP benchmarks are skipped")
        return None
    runs: dict[str, list[Run]] = {name: [] for name, *_ in PLAN}
    commits = {name: [0.0, 0.0, 0.0] for name, *_ in PLAN}  # count, events, seconds
    ours_url = f"http://127.0.0.1:{PORTS['ours']}"
    with tempfile.TemporaryDirectory() as folder:
        data_dir = Path(folder) / "data"
        ours, token = start_tourviews(data_dir, PORTS["ours"])
        noop = start_uvicorn("benchmarks.noop:app", PORTS["noop"])
        naive = start_uvicorn(
            "benchmarks.naive:app", PORTS["naive"], {"TOURVIEWS_NAIVE_DATA": f"{folder}/naive"}
        )
        stolen, ticks = cpu_ticks()
        try:
            for _ in range(rounds):
                for name, server, connections, fresh in PLAN:
                    url = f"http://127.0.0.1:{PORTS[server]}"
                    before = commit_sums(ours_url, token)
                    runs[name].append(wrk(url, seconds, connections, fresh))
                    after = commit_sums(ours_url, token)
                    done = zip(commits[name], after, before, strict=True)
                    commits[name] = [total + a - b for total, a, b in done]
            figures = {"ours_rss": peak_rss_mib(ours.pid), "noop_rss": peak_rss_mib(noop.pid)}
            stolen_after, ticks_after = cpu_ticks()
            # The share of CPU time the host took for other guests: how contended it was.
            figures["steal"] = (stolen_after - stolen) / max(1, ticks_after - ticks)
        finally:
            for process in (naive, noop, ours):
                stop(process)
        mine = [run for name, server, *_ in PLAN if server == "ours" for run in runs[name]]
        figures["acknowledged"] = sum(run.requests - run.refused for run in mine)
        figures["refused"] = sum(run.refused for run in mine)
        figures["stored"] = counted(data_dir)
    for name, (count, events, seconds_) in commits.items():
        if count:
            figures[f"{name}_batch"] = events / count
            figures[f"{name}_commit_ms"] = seconds_ / count * 1000
    for name, base in RATIOS:
        figures.update(round_ratios(f"{name}_vs_{base}", runs[name], runs[base]))
    for name, measured in runs.items():
        for attribute, key in (("accepted_per_s", "per_s"), ("p50_ms", "p50"), ("p99_ms", "p99")):
            figures[f"{name}_{key}"] = statistics.median(
                getattr(run, attribute) for run in measured
            )
    return figures
