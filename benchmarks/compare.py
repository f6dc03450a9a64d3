"""Two trees side by side in one run: does a change keep the benchmarks' figures?

    python -m benchmarks.compare BEFORE_TREE [LABEL]

BEFORE_TREE is a checkout of an earlier commit with its own ``.venv`` (``make install``
there). Its server and this tree's take turns under the same wrk load, beside the
no-op FastAPI endpoint, and each tree reads its own copy of the reads benchmark's
data, in turns too. What is written to ``benchmarks/before_after.md`` is what
BENCHMARKS.md shows under "Before and after" (``make bench`` keeps it).

Rates and latencies on a shared host move with the load of the moment, and the turns
cancel only part of that. The CPU time a server spends per accepted beacon (its
process's user and system time over the beacons wrk saw accepted) moves far less, so
it is the figure that says whether the ingest path got dearer.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from benchmarks.ingest import TOURS, start_uvicorn, stop, wrk
from benchmarks.reads import CACHE, DONE

AFTER = Path(__file__).resolve().parents[1]
PORTS = {"before": 18421, "after": 18422, "noop": 18423}
ROUNDS = 5
SECONDS = 8
READ_ROUNDS = 6  # turns of each tree's reads
READS_PER_TURN = 20  # of each query
RESULT = Path(__file__).with_name("before_after.md")

# Runs inside a tree (its interpreter, its cwd): opens a copy of the data, warms up, then
# for each "go" line reads each query READS_PER_TURN times and prints the milliseconds.
_READER = """
import json, shutil, sys, tempfile
from datetime import timedelta
from pathlib import Path
import benchmarks.reads as r

source, count = Path(sys.argv[1]), int(sys.argv[2])
folder = Path(tempfile.mkdtemp(dir=source.parent))
shutil.copy(source / r.DATABASE_FILE, folder / r.DATABASE_FILE)
db = r.open_database(folder)
cursor = db.cursor()
period = r.Period(r.TODAY - timedelta(days=29), r.TODAY, "day")
busy, median, mine = r.subjects(db)
queries = {
    "busy": lambda: r.tour_stats(cursor, busy, period),
    "median": lambda: r.tour_stats(cursor, median, period),
    "listing": lambda: r.tour_totals(cursor, mine, period),
}
r.measure(queries, 5)
print("ready", flush=True)
for line in sys.stdin:
    if line.strip() != "go":
        break
    print(json.dumps(r.measure(queries, count)), flush=True)
db.close()
shutil.rmtree(folder)
"""


def python(tree: Path) -> str:
    return str(tree / ".venv" / "bin" / "python")


def serve(tree: Path, data_dir: Path, port: int) -> subprocess.Popen[bytes]:
    """The tree's server on ``port``, with the benchmark's tours registered."""

    def tourviews(*args: str) -> None:
        subprocess.run([python(tree), "-m", "tourviews", *args, "--data", str(data_dir)],
                       cwd=tree, check=True, capture_output=True)  # fmt: skip

    for n in range(TOURS):
        tourviews("tours", "add", f"t{n}", "--org", "bench")
    process = subprocess.Popen(
        [python(tree), "-m", "tourviews", "serve", "--port", str(port), "--data",
         str(data_dir), "--trusted-proxy", "127.0.0.1/32"],
        cwd=tree, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while not (data_dir / "server.json").exists():
        if time.monotonic() > deadline or process.poll() is not None:
            raise RuntimeError(f"the server of {tree} did not start")
        time.sleep(0.1)
    return process


def cpu_seconds(pid: int) -> float:
    """User and system time of a process so far (/proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def spread(values: list[float], digits: int = 2) -> str:
    low, mid, high = min(values), statistics.median(values), max(values)
    return f"{mid:.{digits}f} ({low:.{digits}f}–{high:.{digits}f})"


def ingest(before: Path) -> list[str]:
    """Rows of the HTTP comparison: rates, ratios to the no-op, CPU per beacon."""
    trees = {"before": before, "after": AFTER}
    names = ("noop", "before", "after")
    with tempfile.TemporaryDirectory() as folder:
        servers = {name: serve(tree, Path(folder) / name, PORTS[name])
                   for name, tree in trees.items()}  # fmt: skip
        servers["noop"] = start_uvicorn("benchmarks.noop:app", PORTS["noop"])
        rates: dict[tuple[str, int], list[float]] = {}
        cpu: dict[tuple[str, int], list[float]] = {}
        try:
            for _ in range(ROUNDS):
                for connections in (256, 64):
                    for name in names:
                        used = cpu_seconds(servers[name].pid)
                        run = wrk(f"http://127.0.0.1:{PORTS[name]}", SECONDS, connections)
                        used = cpu_seconds(servers[name].pid) - used
                        accepted = run.requests - run.refused
                        rates.setdefault((name, connections), []).append(run.accepted_per_s)
                        cpu.setdefault((name, connections), []).append(used / accepted * 1e6)
        finally:
            for process in servers.values():
                stop(process)
    rows = []
    for connections in (256, 64):

        def ratio(a: str, b: str, c: int = connections) -> list[float]:
            return [x / y for x, y in zip(rates[(a, c)], rates[(b, c)], strict=True)]

        rows.append(
            f"| HTTP ingest, -c{connections}: accepted/s, ratio to the no-op | "
            f"{statistics.median(rates[('before', connections)]):,.0f}/s, "
            f"{spread(ratio('before', 'noop'))} | "
            f"{statistics.median(rates[('after', connections)]):,.0f}/s, "
            f"{spread(ratio('after', 'noop'))} | {spread(ratio('after', 'before'))} |"
        )
        before_cpu, after_cpu = cpu[("before", connections)], cpu[("after", connections)]
        rows.append(
            f"| HTTP ingest, -c{connections}: server CPU per accepted beacon "
            f"(no-op: {statistics.median(cpu[('noop', connections)]):.0f} µs) | "
            f"{spread(before_cpu, 0)} µs | {spread(after_cpu, 0)} µs | "
            f"{spread([a / b for a, b in zip(after_cpu, before_cpu, strict=True)])} |"
        )
    return rows


def reads(before: Path) -> list[str]:
    """Rows of the reads comparison: each tree reads its own copy of the same data."""
    if not (CACHE / DONE).exists():
        raise SystemExit(
            f"no generated data in {CACHE}: run make bench (or benchmarks.reads) first"
        )
    trees = {"before": before, "after": AFTER}
    readers = {
        name: subprocess.Popen(
            [python(tree), "-c", _READER, str((CACHE).resolve()), str(READS_PER_TURN)],
            cwd=tree,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for name, tree in trees.items()
    }
    samples: dict[str, dict[str, list[float]]] = {name: {} for name in trees}
    try:
        for name, reader in readers.items():
            assert reader.stdout is not None and reader.stdout.readline().strip() == "ready", name
        for _ in range(READ_ROUNDS):
            for name, reader in readers.items():
                assert reader.stdin is not None and reader.stdout is not None
                reader.stdin.write("go\n")
                reader.stdin.flush()
                for query, ms in json.loads(reader.stdout.readline()).items():
                    samples[name].setdefault(query, []).extend(ms)
    finally:
        for reader in readers.values():
            if reader.stdin is not None:
                reader.stdin.close()
            reader.wait(120)

    def p(values: list[float], fraction: float) -> float:
        ordered = sorted(values)
        return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]

    rows = []
    for query, what in (("busy", "busiest tour × 30 days"), ("median", "median tour × 30 days"),
                        ("listing", "a 400-tour organization's listing")):  # fmt: skip
        b, a = samples["before"][query], samples["after"][query]
        rows.append(
            f"| Reads, {what}: p50 / p95 | {statistics.median(b):.1f} / {p(b, 0.95):.1f} ms | "
            f"{statistics.median(a):.1f} / {p(a, 0.95):.1f} ms | "
            f"p95 {p(a, 0.95) / p(b, 0.95):.2f} |"
        )
    return rows


def main() -> int:
    if len(sys.argv) not in (2, 3) or not Path(python(Path(sys.argv[1]))).exists():
        print(
            "usage: python -m benchmarks.compare BEFORE_TREE [LABEL]  (a checkout with its .venv)"
        )
        return 2
    before = Path(sys.argv[1]).resolve()
    label = sys.argv[2] if len(sys.argv) == 3 else before.name
    commit = subprocess.run(["git", "-C", str(before), "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip()  # fmt: skip
    here = subprocess.run(["git", "-C", str(AFTER), "rev-parse", "--short", "HEAD"],
                          capture_output=True, text=True).stdout.strip()  # fmt: skip
    load = os.getloadavg()[0]
    rows = ingest(before) + reads(before)
    after_load = os.getloadavg()[0]
    text = "\n".join([
        f"{label}: before is `{commit}`, after `{here}`, measured "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC with `python -m benchmarks.compare`, "
        f"{ROUNDS} rounds of {SECONDS} s per HTTP run and {READ_ROUNDS} turns of "
        f"{READS_PER_TURN} reads per query; load average {load:.1f} at the start and "
        f"{after_load:.1f} at the end.",
        "",
        "| measurement | before | after | after / before |",
        "|---|---|---|---|",
        *rows,
        "",
    ])  # fmt: skip
    print(text)
    RESULT.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
