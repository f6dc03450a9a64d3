"""Reads on 10 million events: one tour's stats, an organization's listing and overview, p50/p95.

The data directory is built through the real storage code, as the running service
would leave it: tours registered in the registry, 90 days of traffic committed in
time order through ``EventWriter``, and at the start of each day the service's daily
housekeeping round (rollups, retention with the default 30 days of raw events, the
weekly sort by tour). It is cached under ``.bench/`` (keyed by ``VERSION``) and
copied for each run, so the writer that runs during the reads never changes it.

Measured in one process that owns the file, as the service does: the stats of the
busiest tour and of the median tour over the last 30 days (today included, so today
answers from raw events), the busiest tour's stats filtered to its phones' visits
(``filter=device:mobile``: raw events alone, ``tourviews.analytics.filters``), and the
totals of the biggest organization's tours (as ``GET /v1/tours``) and their overview
(``GET /v1/overview``: the period before and views per day too), taking turns, read
again and again as a dashboard does (what is read of completed days is kept,
``tourviews.analytics.kept``; nothing of a filtered read is); then each as a first read, with
nothing kept; then the same while a thread commits batches of 32 events back to back,
the service's writer under load.
"""

from __future__ import annotations

import bisect
import itertools
import random
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from tourviews.analytics.filters import parse_filters
from tourviews.analytics.kept import clear
from tourviews.analytics.overview import overview
from tourviews.analytics.period import Period
from tourviews.analytics.retention import DEFAULT_RETENTION_DAYS
from tourviews.analytics.stats import tour_stats, tour_totals
from tourviews.ingest.store.writer import EventWriter
from tourviews.service import daily_round
from tourviews.storage.clock import ManualClock
from tourviews.storage.database import DATABASE_FILE, Database, open_database
from tourviews.storage.event import Event
from tourviews.storage.registry import Registry

VERSION = 6  # bump when the generated data changes: the cache is keyed by it
CACHE = Path(".bench") / f"reads-v{VERSION}"
DONE = "generated"
EVENTS = 10_000_000
DAYS = 90
TODAY = date(2026, 11, 24)  # the last generated day; "now" is its end
TOURS = 1_000
ORGS = {"atlas": 400, "borealis": 250, "cobalt": 200, "delta": 100, "ember": 50}
BATCH = 50_000
SEED = 2026

# (share, device, browser, os): what a visitor's browser is, for all their visits
AGENTS = (
    (30, "desktop", "Chrome", "Windows"),
    (20, "mobile", "Mobile Safari", "iOS"),
    (18, "mobile", "Chrome Mobile", "Android"),
    (9, "desktop", "Safari", "Mac OS X"),
    (7, "desktop", "Edge", "Windows"),
    (6, "desktop", "Firefox", "Windows"),
    (5, "tablet", "Mobile Safari", "iOS"),
    (3, "mobile", "Samsung Internet", "Android"),
    (2, "other", "Chrome", "Linux"),
)
HOURS = (2, 1, 1, 1, 1, 2, 3, 5, 7, 8, 8, 8, 9, 9, 8, 8, 8, 8, 9, 10, 10, 9, 6, 4)
RETURNING = 0.35  # share of visits by someone who came before
SCENE_ON = 0.6  # after each view or scene, the chance of entering one more scene
ENGAGED = 0.5  # the chance that a scene's time is sent (engage.js on half the pages)
ACTED = 0.03  # the chance that a visit ends with an action
FILTERS = ("device:mobile",)  # the filtered read: a click on the devices' busiest row


def tour_name(n: int) -> str:
    return f"tour-{n:04d}"


class Traffic:
    """Visits drawn with a skew: a few tours get most of them, some visitors come back."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        ranks = list(range(TOURS))
        rng.shuffle(ranks)  # popularity does not follow the name or the organization
        self.popularity = ranks  # popularity[tour] = its rank, 0 the busiest
        self.cum_weights = list(itertools.accumulate(1 / (rank + 5) for rank in ranks))
        self.visitors = [0] * TOURS  # visitors each tour has had so far
        self.scenes = [3 + rng.randrange(25) for _ in range(TOURS)]
        self.names = [tour_name(n) for n in range(TOURS)]
        self.agent_weights = list(itertools.accumulate(share for share, *_ in AGENTS))

    def visitor(self, tour: int) -> tuple[str, tuple[str, str, str]]:
        """A returning visitor of ``tour`` (early ones most loyal) or a new one."""
        seen = self.visitors[tour]
        if seen and self.rng.random() < RETURNING:
            n = int(seen * self.rng.random() ** 2)
        else:
            n = seen
            self.visitors[tour] = seen + 1
        # The same visitor (and browser) every time they come: a function of (tour, n).
        mixed = ((tour << 40 | n) * 0x9E3779B97F4A7C15F39CC0605CEDC835) & ((1 << 128) - 1)
        text = f"{mixed:032x}"
        agent = AGENTS[bisect.bisect_right(self.agent_weights, mixed % self.agent_weights[-1])]
        return f"{text[:8]}-{text[8:12]}-4{text[13:16]}-a{text[17:20]}-{text[20:]}", agent[1:]

    def day(self, day: date, events: int) -> list[Event]:
        """``events`` events of ``day``, in time order."""
        rows: list[Event] = []
        midnight = datetime.combine(day, datetime.min.time())
        last = midnight + timedelta(days=1, microseconds=-1)
        random_ = self.rng.random
        while len(rows) < events:
            tours = self.rng.choices(range(TOURS), cum_weights=self.cum_weights, k=1_000)
            hours = self.rng.choices(range(24), weights=HOURS, k=1_000)
            for tour, hour in zip(tours, hours, strict=True):
                visitor, (device, browser, os) = self.visitor(tour)
                at = midnight + timedelta(seconds=(hour + random_()) * 3600)
                name, ip = self.names[tour], self.rng.randbytes(16)
                view = Event(ts=at, tour=name, kind="view", scene=None, visitor=visitor,
                             ip_hash=ip, device=device, browser=browser, os=os, seconds=None,
                             action=None)  # fmt: skip
                rows.append(view)
                while random_() < SCENE_ON:
                    at = min(last, at + timedelta(seconds=5 + random_() * 90))
                    scene = f"scene-{int(self.scenes[tour] * random_() ** 1.5):02d}"
                    rows.append(view._replace(ts=at, kind="scene", scene=scene))
                    if random_() < ENGAGED:  # engage.js on the page: the scene's time
                        seconds = 5 + int(random_() * 120)
                        at = min(last, at + timedelta(seconds=seconds))
                        rows.append(
                            view._replace(ts=at, kind="engage", scene=scene, seconds=seconds)
                        )
                if random_() < ACTED:
                    at = min(last, at + timedelta(seconds=10))
                    rows.append(view._replace(ts=at, kind="action", action="lead-form"))
        del rows[events:]
        rows.sort(key=lambda row: row.ts)
        return rows


def daily_events() -> list[int]:
    """How many events each day gets: busier at weekends, growing a little; EVENTS in all."""
    first = TODAY - timedelta(days=DAYS - 1)
    weights = [
        (1.3 if (first + timedelta(days=n)).weekday() >= 5 else 1.0) * (1 + n / DAYS / 2)
        for n in range(DAYS)
    ]
    counts = [int(EVENTS * w / sum(weights)) for w in weights]
    counts[-1] += EVENTS - sum(counts)
    return counts


def generate(target: Path) -> None:
    """Build the data directory day by day, as the service would have (about 2 minutes)."""
    traffic = Traffic(random.Random(SEED))
    first = TODAY - timedelta(days=DAYS - 1)
    clock = ManualClock(datetime.combine(first, datetime.min.time(), tzinfo=UTC))
    db = open_database(target)
    try:
        registry = Registry(db, clock)
        orgs = [org for org, size in ORGS.items() for _ in range(size)]
        random.Random(SEED + 1).shuffle(orgs)  # an organization's tours are not neighbours
        for n, org in enumerate(orgs):
            registry.put_tour(tour_name(n), org)
        writer = EventWriter(db)
        for n, events in enumerate(daily_events()):
            day = first + timedelta(days=n)
            rows = traffic.day(day, events)
            for start in range(0, len(rows), BATCH):
                writer.write(rows[start : start + BATCH], {})
            if day < TODAY:  # the first housekeeping round of the next day
                daily_round(db.cursor(), day + timedelta(days=1), DEFAULT_RETENTION_DAYS)
            print(f"\r  day {n + 1}/{DAYS}", end="", flush=True)
        print()
    finally:
        db.close()


def cached() -> tuple[Path, float]:
    """The generated data directory, and the seconds its generation took."""
    if not (CACHE / DONE).exists():
        shutil.rmtree(CACHE, ignore_errors=True)
        print(f"generating {EVENTS:,} events over {DAYS} days into {CACHE} ...", flush=True)
        started = time.perf_counter()
        generate(CACHE)
        (CACHE / DONE).write_text(f"{time.perf_counter() - started:.1f}\n")
    return CACHE, float((CACHE / DONE).read_text())


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


class Writer(threading.Thread):
    """Commits batches of today's events back to back, as the service's writer does under load."""

    def __init__(self, db: Database, size: int = 32) -> None:
        super().__init__(daemon=True)
        self.writer = EventWriter(db)
        self.size = size
        self.commits = 0
        self.stopping = threading.Event()

    def run(self) -> None:
        at = datetime.combine(TODAY, datetime.min.time()) + timedelta(hours=23)
        for batch in itertools.count():
            if self.stopping.is_set():
                return
            rows = [
                Event(ts=at, tour=tour_name(i % TOURS), kind="view", scene=None,
                      visitor=f"{batch:08x}-0000-4000-8000-{i:012x}", ip_hash=bytes(16),
                      device="desktop", browser="Chrome", os="Windows", seconds=None, action=None)
                for i in range(self.size)
            ]  # fmt: skip
            self.writer.write(rows, {})
            self.commits += 1


def timed(query: Callable[[], object]) -> float:
    started = time.perf_counter()
    query()
    return (time.perf_counter() - started) * 1000


def measure(queries: dict[str, Callable[[], object]], rounds: int) -> dict[str, list[float]]:
    """Milliseconds of each query, the queries taking turns so they see the same machine."""
    samples: dict[str, list[float]] = {name: [] for name in queries}
    for _ in range(rounds):
        for name, query in queries.items():
            samples[name].append(timed(query))
    return samples


def subjects(db: Database) -> tuple[str, str, list[str]]:
    """The busiest tour, the median tour, and the tours of the biggest organization."""
    by_rank = sorted(range(TOURS), key=Traffic(random.Random(SEED)).popularity.__getitem__)
    biggest = max(ORGS, key=ORGS.__getitem__)
    registry = Registry(db, ManualClock(datetime.now(UTC)))
    mine = sorted(t.tour for t in registry.tours.values() if t.org == biggest)
    return tour_name(by_rank[0]), tour_name(by_rank[TOURS // 2]), mine


def commits_per_s(db: Database, during: Callable[[], object]) -> float:
    """The writer's commits per second while ``during`` runs."""
    writer = Writer(db)
    started = time.perf_counter()
    writer.start()
    try:
        during()
    finally:
        writer.stopping.set()
        writer.join()
    return writer.commits / (time.perf_counter() - started)


def bench_reads(rounds: int = 100) -> dict[str, float]:
    """p50/p95 in ms of the reads on the generated data, alone and while a writer commits."""
    source, generate_s = cached()
    with tempfile.TemporaryDirectory(dir=source.parent) as folder:
        shutil.copy(source / DATABASE_FILE, Path(folder) / DATABASE_FILE)
        db = open_database(Path(folder))
        try:
            cursor = db.cursor()
            period = Period(TODAY - timedelta(days=29), TODAY, "day")
            busy, median, mine = subjects(db)
            filtered = parse_filters(FILTERS)
            queries: dict[str, Callable[[], object]] = {
                "busy": lambda: tour_stats(cursor, busy, period),
                "median": lambda: tour_stats(cursor, median, period),
                "filtered": lambda: tour_stats(cursor, busy, period, filters=filtered),
                "listing": lambda: tour_totals(cursor, mine, period),
                "overview": lambda: overview(cursor, mine, period),
            }
            measure(queries, 3)  # warm: the first reads load the file into memory
            alone = measure(queries, rounds)
            # The first read of a tour after the day's rollup: nothing of it is kept.
            first = measure(
                {name: _after_clearing(query) for name, query in queries.items()},
                rounds // 2,
            )
            writing: dict[str, list[float]] = {}
            during = commits_per_s(db, lambda: writing.update(measure(queries, rounds)))
            idle = commits_per_s(db, lambda: time.sleep(3))
            events = {
                name: tour_stats(cursor, tour, period)["totals"]["views"]
                for name, tour in (("busy", busy), ("median", median))
            }
            events["filtered"] = tour_stats(cursor, busy, period, filters=filtered)["totals"][
                "views"
            ]
        finally:
            db.close()
    figures: dict[str, float] = {}
    for suffix, runs in (("", alone), ("_first", first), ("_writing", writing)):
        for name, samples in runs.items():
            figures[f"{name}{suffix}_p50_ms"] = statistics.median(samples)
            figures[f"{name}{suffix}_p95_ms"] = percentile(samples, 0.95)
    return figures | {
        "writer_commits_per_s": during,
        "writer_alone_commits_per_s": idle,
        "busy_views": events["busy"],
        "median_views": events["median"],
        "filtered_views": events["filtered"],
        "listing_tours": len(mine),
        "raw_retention_days": DEFAULT_RETENTION_DAYS,
        "generate_s": generate_s,
    }


def main() -> int:
    figures = bench_reads()
    print(
        f"{EVENTS:,} events over {DAYS} days, {TOURS:,} tours in {len(ORGS)} organizations, "
        f"raw retention {figures['raw_retention_days']:.0f} days (the service's default): "
        f"the last 30 days are raw events, older days rollups. Generated in "
        f"{figures['generate_s']:.0f} s (cached in {CACHE}).\n"
        f"Stats over the last 30 days of the busiest tour ({figures['busy_views']:,.0f} views) "
        f"and the median tour ({figures['median_views']:,.0f} views); listing: the totals of "
        f"the {figures['listing_tours']:.0f} tours of the biggest organization; overview: "
        "theirs and the 30 days before, with views per day; filtered: the busiest tour's, "
        f"{' and '.join(FILTERS)} ({figures['filtered_views']:,.0f} views). "
        "_writing: while a thread commits 32-event batches back to back."
    )
    for key, value in figures.items():
        print(f"{key:32} {value:10.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())


def _after_clearing(query: Callable[[], object]) -> Callable[[], object]:
    """``query`` with nothing of it kept from before (the first read after a rollup)."""

    def cleared() -> object:
        clear()
        return query()

    return cleared
