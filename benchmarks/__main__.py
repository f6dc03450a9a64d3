"""Run every benchmark and write BENCHMARKS.md.

Each figure is a ratio of two things measured alternately in the same run, because
this machine is shared and absolute times drift.
"""

from __future__ import annotations

import math
import os
import platform
import statistics
import sys
import tempfile
import time
import tracemalloc
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path

from user_agents import parse as legacy_parse

from benchmarks.accuracy import evaluate
from benchmarks.accuracy import report as accuracy_report
from benchmarks.compare import RESULT as COMPARISON
from benchmarks.countries import bench_countries
from benchmarks.ingest import ROUNDS, SECONDS, bench_ingest
from benchmarks.reads import bench_reads
from benchmarks.redis_mode import ROUNDS as ROUNDS_REDIS
from benchmarks.redis_mode import SECONDS as SECONDS_REDIS
from benchmarks.redis_mode import bench_redis_mode
from tourviews.ingest.agents.classifier import CACHE_ENTRIES, MAX_LENGTH, AgentClassifier
from tourviews.ingest.rules.dedup import MAX_KEYS, Deduplicator
from tourviews.ingest.rules.rotation import MAX_ENTRIES, RotationGuard
from tourviews.ingest.store.writer import EVENTS, EventWriter, _table
from tourviews.storage.database import open_database
from tourviews.storage.event import Event

TEMPLATES = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/{a}.0.{b}.{c} Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_{a} like Mac OS X) AppleWebKit/605.1.{b} "
    "(KHTML, like Gecko) Version/17.{c} Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_{a}) AppleWebKit/605.1.{b} "
    "(KHTML, like Gecko) Version/17.{c} Safari/605.1.15",
    "Mozilla/5.0 (Linux; Android 14; SM-S9{a}1B) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/{b}.0.0.{c} Mobile Safari/537.36",
    "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:1{a}.0) Gecko/20100101 Firefox/1{b}.{c}",
]


def fresh_agents(count: int, seed: int) -> list[str]:
    """User-agents of real shapes that no cache has seen (version numbers vary)."""
    return [
        TEMPLATES[i % len(TEMPLATES)].format(a=seed % 97 + i % 7, b=i, c=seed) for i in range(count)
    ]


def per_call_us(function: Callable[[str], object], agents: list[str]) -> float:
    """Median microseconds of one call, each on a string not seen before."""
    times = []
    for agent in agents:
        start = time.perf_counter_ns()
        function(agent)
        times.append(time.perf_counter_ns() - start)
    return statistics.median(times) / 1_000


def bench_classification() -> dict[str, float]:
    classifier = AgentClassifier()
    ours, legacy = [], []
    for round_ in range(5):  # alternate, so both see the same machine
        ours.append(per_call_us(classifier, fresh_agents(2_000, round_ * 2)))
        legacy.append(per_call_us(legacy_parse, fresh_agents(300, round_ * 2 + 1)))
    return {"ours_us": statistics.median(ours), "legacy_us": statistics.median(legacy)}


def rows(count: int, batch: int) -> list[Event]:
    at = datetime(2026, 11, 24, 12, 0)
    return [
        Event(ts=at, tour=f"t{i % 1000}", kind="view", scene=None,
              visitor=f"{batch:08x}-0000-4000-8000-{i:012x}", ip_hash=os.urandom(16),
              device="desktop", browser="Chrome", os="Windows", seconds=None, action=None)
        for i in range(count)
    ]  # fmt: skip


def bench_writer(batches: int = 80, size: int = 1_000) -> dict[str, float]:
    """EventWriter (events and drop counters, one transaction) against DuckDB's raw
    insert of the same Arrow batches, alternately, each going first every other batch.
    One beacon in 20 is a drop."""
    with tempfile.TemporaryDirectory() as folder:
        ours_db = open_database(Path(folder) / "ours")
        raw_db = open_database(Path(folder) / "raw")
        writer = EventWriter(ours_db)
        raw = raw_db.cursor()

        def insert_raw(batch: list[Event]) -> None:
            raw.begin()
            raw.from_arrow(_table(EVENTS, batch)).insert_into("events")
            raw.commit()

        seconds = {"ours": 0.0, "raw": 0.0}
        for n in range(batches):
            batch = rows(size, n)
            drops = {(batch[0].ts, "t1", os.urandom(16), "duplicate"): 1 for _ in range(size // 20)}
            for name in ("ours", "raw") if n % 2 else ("raw", "ours"):
                start = time.perf_counter()
                if name == "ours":
                    writer.write(batch, drops)
                else:
                    insert_raw(batch)
                seconds[name] += time.perf_counter() - start
        ours_db.close()
        raw_db.close()
    total = batches * size
    return {"ours_per_s": total / seconds["ours"], "raw_per_s": total / seconds["raw"]}


def bytes_per_entry(fill: Callable[[int], None], count: int) -> float:
    """Bytes of Python memory that ``fill(count)`` keeps, per entry."""
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    fill(count)
    kept = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    return kept / count


def bench_state() -> dict[str, float]:
    """Memory per entry of the in-process ingest state, keys included."""
    count = 100_000
    dedup = Deduplicator(1800.0, max_keys=count)
    rotation = RotationGuard(1800.0, limit=50, max_entries=count)
    classifier = AgentClassifier(entries=10_000)
    agents = fresh_agents(10_000, 7)

    def fill_dedup(n: int) -> None:
        for i in range(n):
            dedup.is_duplicate(("tour-0001", None, str(uuid.uuid4())), float(i))

    def fill_rotation(n: int) -> None:
        for i in range(n):
            rotation.is_rotating(os.urandom(16), "tour-0001", str(uuid.uuid4()), float(i))

    def fill_classifier(n: int) -> None:
        for agent in agents[:n]:
            classifier(agent)

    return {
        "dedup": bytes_per_entry(fill_dedup, count),
        "rotation": bytes_per_entry(fill_rotation, count),
        "agents": bytes_per_entry(fill_classifier, 10_000),
        "agent_length": statistics.mean(len(agent) for agent in agents),
    }


def machine() -> str:
    cpu = "unknown CPU"
    with open("/proc/cpuinfo") as info:
        for line in info:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    libraries = ", ".join(
        f"{name} {version(name)}"
        for name in (
            "duckdb",
            "fastapi",
            "uvicorn",
            "ua-parser",
            "ua-parser-rs",
            "orjson",
            "crawler-user-agents",
            "crawlerdetect",
            "ai-crawler-index",
            "ua-parser-py",
            "device-detector",
        )
    )
    return f"{os.cpu_count()} cores, {cpu}; Python {platform.python_version()}; {libraries}"


def redis_rows(shared: dict[str, float] | None) -> list[tuple[str, str, str, str, str]]:
    if shared is None:
        return []
    return [
        ("Redis mode: one ingest node (Redis and the primary on the same 2 cores) against "
         "the embedded service, -c256",
         f"{shared['node_per_s']:,.0f}/s, p99 {shared['node_p99']:.0f} ms",
         f"embedded {shared['embedded_per_s']:,.0f}/s, p99 {shared['embedded_p99']:.0f} ms",
         f"{shared['ratio']:.2f}× (rounds {shared['ratio_low']:.2f}–{shared['ratio_high']:.2f})",
         "≥ 0.6×"),
        ("Redis mode, CPU per beacon of one process: the ingest node against the embedded "
         "service",
         f"node {shared['node_cpu_us']:.0f} µs", f"embedded {shared['embedded_cpu_us']:.0f} µs",
         f"{shared['cpu_ratio']:.2f}× the beacons per CPU second", "≥ 0.6×"),
    ]  # fmt: skip


def redis_paragraph(shared: dict[str, float]) -> str:
    return (
        "Redis mode (docs/scaling.md): a redis-server fsyncing every write, a primary "
        "draining the stream into DuckDB and one ingest node, all on the machine's 2 cores "
        "with wrk; the same 50 tours and load as the embedded runs, which alternate with "
        f"them ({ROUNDS_REDIS} rounds of {SECONDS_REDIS} s). CPU per beacon accepted by the "
        f"node: the node {shared['node_cpu_us']:.0f} µs, Redis {shared['redis_cpu_us']:.0f} µs, "
        f"the primary {shared['primary_cpu_us']:.0f} µs (the embedded service: "
        f"{shared['embedded_cpu_us']:.0f} µs in all). With the primary stopped, the node "
        f"took {shared['backlog_per_s']:,.0f} beacons/s into the stream; started again, "
        f"the primary drained the {shared['drain_backlog']:,.0f} waiting at "
        f"{shared['drain_per_s']:,.0f} entries/s (after {shared['primary_start_s']:.1f} s "
        "to start)."
    )


def before_after() -> list[str]:
    """The last comparison of two trees (``python -m benchmarks.compare``), kept as it was
    measured: a restructure is judged against the tree before it, which this run has not."""
    if not COMPARISON.exists():
        return []
    return ["## Before and after", "", COMPARISON.read_text()]


def main() -> int:
    print("HTTP ingest under wrk (about three minutes) ...", flush=True)
    ingest = bench_ingest()
    print("Redis mode against the embedded mode (about two minutes) ...", flush=True)
    shared = bench_redis_mode()
    print("classifying never-seen user-agents ...", flush=True)
    ua = bench_classification()
    print("looking up countries (--geoip) ...", flush=True)
    with tempfile.TemporaryDirectory() as folder:
        geo = bench_countries(Path(folder))
    print("writing batches ...", flush=True)
    writer = bench_writer()
    print("measuring state memory ...", flush=True)
    state = bench_state()
    print("reading 10 million events (generated once, ~3 minutes, then cached) ...", flush=True)
    r = bench_reads()
    print("labelled user-agents through HTTP (under a minute) ...", flush=True)
    accuracy = accuracy_report(evaluate())
    rows_ = [
        ("User-agent classification, never-seen strings (median per call)",
         f"{ua['ours_us']:.1f} µs", f"user_agents.parse {ua['legacy_us']:.0f} µs",
         f"{ua['legacy_us'] / ua['ours_us']:.0f}× faster", "≤ 20 µs"),
        (f"Countries (--geoip): what the look-up adds per beacon, visits of "
         f"{geo['beacons_per_visit']:.0f} beacons each from a network not seen before "
         "(CPU time, median of 5 rounds)",
         f"{geo['added_us']:.1f} µs per beacon",
         f"identifying a beacon without it {geo['identify_us']:.1f} µs; a look-up in a network "
         f"not seen before {geo['unseen_us']:.1f} µs",
         f"{(geo['identify_us'] + geo['added_us']) / geo['identify_us']:.2f}× the identify step",
         "≤ 5 µs per beacon"),
        ("Writer: 1,000-event batches with 50 drop counters, one transaction each",
         f"{writer['ours_per_s']:,.0f} events/s", f"raw Arrow insert {writer['raw_per_s']:,.0f}/s",
         f"{writer['ours_per_s'] / writer['raw_per_s']:.2f}×", "≥ 0.8×"),
        (f"Reads, 10M events, 1,000 tours, {r['raw_retention_days']:.0f} days raw: one tour "
         "× 30 days (busiest, median tour) and a 400-tour organization's listing, p50 / p95, "
         "read again and again as a dashboard does",
         f"busiest {r['busy_p50_ms']:.0f} / {r['busy_p95_ms']:.0f} ms, "
         f"median {r['median_p50_ms']:.0f} / {r['median_p95_ms']:.0f} ms, "
         f"listing {r['listing_p50_ms']:.0f} / {r['listing_p95_ms']:.0f} ms",
         f"first reads after the day's rollup (nothing kept): busiest p95 "
         f"{r['busy_first_p95_ms']:.0f} ms, median {r['median_first_p95_ms']:.0f} ms, listing "
         f"{r['listing_first_p95_ms']:.0f} ms; while a writer commits: busiest p95 "
         f"{r['busy_writing_p95_ms']:.0f} ms, listing "
         f"p95 {r['listing_writing_p95_ms']:.0f} ms; the writer kept "
         f"{r['writer_commits_per_s']:,.0f} commits/s "
         f"(alone {r['writer_alone_commits_per_s']:,.0f})",
         f"worst p95 {max(r['busy_p95_ms'], r['median_p95_ms'], r['listing_p95_ms']):.0f} ms",
         "p95 ≤ 50 ms"),
        ("Filtered read, same data: the busiest tour × 30 days, filter=device:mobile (raw "
         "events alone: a filter picks whole visits), p50 / p95",
         f"{r['filtered_p50_ms']:.0f} / {r['filtered_p95_ms']:.0f} ms "
         f"({r['filtered_views']:,.0f} of {r['busy_views']:,.0f} views)",
         f"while a writer commits: p95 {r['filtered_writing_p95_ms']:.0f} ms",
         f"p95 {r['filtered_p95_ms']:.0f} ms", "p95 ≤ 50 ms"),
        ("Overview (GET /v1/overview), same data: the 400 tours of that organization × 30 days "
         "and the 30 before, with views per day, p50 / p95, read again and again",
         f"{r['overview_p50_ms']:.0f} / {r['overview_p95_ms']:.0f} ms",
         f"first read after the day's rollup p95 {r['overview_first_p95_ms']:.0f} ms; while a "
         f"writer commits p95 {r['overview_writing_p95_ms']:.0f} ms",
         f"p95 {r['overview_p95_ms']:.0f} ms", "p95 ≤ 50 ms"),
    ]  # fmt: skip
    table = ["| measurement | tourviews | baseline (same run) | ratio | goal |",
             "|---|---|---|---|---|"]  # fmt: skip
    if ingest is not None:

        def load(name: str) -> str:
            return (f"{ingest[f'{name}_per_s']:,.0f}/s, p50 {ingest[f'{name}_p50']:.1f} ms, "
                    f"p99 {ingest[f'{name}_p99']:.1f} ms")  # fmt: skip

        def ratio(name: str, base: str, digits: int = 2, then: str = "") -> str:
            key = f"{name}_vs_{base}"
            failed = f"; {ingest[f'{key}_failed']:.0f} failed: the {base} run accepted nothing"
            failed = failed if ingest[f"{key}_failed"] else ""
            if math.isnan(ingest[key]):
                return f"no ratio{failed}"
            low, high = ingest[f"{key}_low"], ingest[f"{key}_high"]
            return (f"{ingest[key]:.{digits}f}×{then} "
                    f"(rounds {low:.{digits}f}–{high:.{digits}f}{failed})")  # fmt: skip

        rows_ = [
            ("HTTP ingest: accepted beacons/s (204 after commit), wrk -t2 -c256",
             load("ours"), f"no-op FastAPI {load('noop')}", ratio("ours", "noop"),
             "≥ 0.75×"),
            ("HTTP ingest with 64 connections (bounded by commit latency, see below)",
             load("ours_64"), f"no-op FastAPI {load('noop_64')}",
             ratio("ours_64", "noop_64"), "≥ 0.75×"),
            ("Cache-busting flood: every user-agent new, -c256", load("flood"),
             f"normal ingest {ingest['ours_per_s']:,.0f}/s", ratio("flood", "ours"),
             "≥ 0.7×"),
            ("Naive build: pydantic model, user_agents.parse, one commit per request, -c256",
             f"{ingest['ours_per_s']:,.0f}/s", f"naive {load('naive')}",
             ratio("ours", "naive", 1, " faster"), "—"),
            *redis_rows(shared),
            *rows_,
        ]  # fmt: skip
    table += [f"| {' | '.join(row)} |" for row in rows_]
    if shared is not None:
        table += ["", redis_paragraph(shared)]
    if ingest is not None:
        table += [
            "",
            f"Ingest integrity: wrk saw {ingest['acknowledged']:,} beacons acknowledged "
            f"with 204 and {ingest['refused']:,} refused; {ingest['stored']:,} were stored in "
            "DuckDB after the run, as counted events or as the counters of beacons answered 204 "
            "but not counted (at least as many: beacons in flight when wrk stopped were "
            "committed too). A third of the beacons are engaged time (engage.js) of a "
            "visitor who viewed a moment before. Peak memory (VmHWM): "
            f"tourviews {ingest['ours_rss']:.0f} MiB, "
            f"no-op {ingest['noop_rss']:.0f} MiB. The host took {ingest['steal']:.1%} of the "
            "CPU time for other guests during the HTTP runs (steal time, /proc/stat)"
            + ("" if ingest["steal"] < 0.05 else ": a contended host")
            + ". Its speed varies besides, with no time stolen: the legacy parser above, "
            f"pure CPU, took {ua['legacy_us']:.0f} µs per user-agent in this run, and the "
            "figures measured in µs and the HTTP ratios move with it (docs/performance.md).",
            "",
            "Where the time goes (the server's /metrics): with 256 connections a commit "
            f"held {ingest['ours_batch']:.0f} events and took {ingest['ours_commit_ms']:.1f} ms; "
            f"with 64, {ingest['ours_64_batch']:.0f} events in {ingest['ours_64_commit_ms']:.1f} "
            "ms. A commit costs DuckDB about a millisecond of CPU and an fsync, whatever its size; "
            "so with 64 connections, half waiting on the commit in flight and half on the "
            "next, the rate is bounded near 64 / (2 × commit time); with more connections "
            "commits fill up and the server becomes CPU-bound like the no-op one.",
        ]
    memory = [
        "| state | bytes per entry (measured) | cap | worst case |",
        "|---|---|---|---|",
        f"| dedup window, per (tour, scene, visitor) | {state['dedup']:.0f} | "
        f"{MAX_KEYS:,} keys | {state['dedup'] * MAX_KEYS / 2**20:.0f} MiB |",
        f"| rotation guard, per source of one visitor (worst case) | {state['rotation']:.0f} | "
        f"{MAX_ENTRIES:,} entries | {state['rotation'] * MAX_ENTRIES / 2**20:.0f} MiB |",
        f"| user-agent cache, per {state['agent_length']:.0f}-character user-agent | "
        f"{state['agents']:.0f} | {CACHE_ENTRIES:,} entries | "
        f"{(state['agents'] + MAX_LENGTH - state['agent_length']) * CACHE_ENTRIES / 2**20:.0f} MiB "
        f"(at {MAX_LENGTH} characters each) |",
    ]
    report = "\n".join(
        [
            "# Benchmarks",
            "",
            f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC with `make bench` "
            f"(`python -m benchmarks`).",
            f"Machine: {machine()}.",
            "",
            *table,
            "",
            *memory,
            "",
            "## Accuracy of the count",
            "",
            "Labelled user-agents sent as beacons to a real server, each set to a tour of its "
            "own, read back from the stats API (`make eval` runs this alone). Evaluation sets "
            "come from sources the filter is not built from and was never tuned on; the "
            "development sets are what the filter is built from or the unit tests tune on "
            "([docs/traffic-quality.md](docs/traffic-quality.md)).",
            "",
            *accuracy,
            "",
            "Ratios are measured side by side in one run; absolute figures drift on a "
            f"shared machine. An HTTP ratio is the median over {ROUNDS} rounds of the ratio "
            f"of the two runs within a round ({SECONDS} s each), with the rounds' range; the "
            "rates shown are medians over the rounds. wrk runs on the same 2 cores as the "
            "server it measures. "
            "The read data directory is generated through the real storage code and the "
            "service's daily housekeeping (docs/storage.md), then cached in `.bench/`.",
            "",
            *before_after(),
        ]
    )
    print(report)
    Path("BENCHMARKS.md").write_text(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
