"""Exact visitors and visits from rolled-up days: the stats equal a count over the raw events.

Each test writes counted events straight through the storage writer, rolls up some
days, and compares the stats document with one computed here, by brute force, from
the same events: any period within raw retention must be exact, whichever of its
days are rolled up, after erasure, and after purge. The visits are cut here one
event at a time, by the contract's rule, not by the SQL under test.
"""

from __future__ import annotations

import itertools
import os
import random
import tempfile
import uuid
from collections import defaultdict
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.builders import event
from tourviews.analytics.erasure import forget
from tourviews.analytics.exact import EXACT_ROLLUPS
from tourviews.analytics.period import Period
from tourviews.analytics.retention import purge
from tourviews.analytics.rollup import roll_up_completed
from tourviews.analytics.stats import tour_stats, tour_totals
from tourviews.ingest.store.writer import EventWriter
from tourviews.storage.database import Database, open_database, read_meta
from tourviews.storage.event import Event

FIRST = date(2026, 11, 1)
DAYS = 10
TODAY = FIRST + timedelta(days=DAYS - 1)
TOURS = ("t1", "t2")
AGENTS = (
    ("desktop", "Chrome", "Windows"),
    ("mobile", "Mobile Safari", "iOS"),
    ("desktop", "Firefox", "Windows"),
)


# Where views came from: stored before the fields (all NULL), embedded in a portal, from
# a search engine, a campaign, direct.
CAME_FIELDS = ("source", "channel", "utm_source", "utm_medium", "utm_campaign")
CAME = ((None,) * 5, ("krisha.kz", "embed", None, None, None),
        ("yandex.kz", "search", None, None, None), (None, "campaign", "vk", "social", "spring"),
        (None, "direct", None, None, None))  # fmt: skip
# The key a view without a value is counted under, in each breakdown of them.
ABSENT = {"source": "(direct)", "channel": "direct", "utm_source": "(none)",
          "utm_medium": "(none)", "utm_campaign": "(none)"}  # fmt: skip


def traffic(rng: random.Random, visits: int = 120) -> list[Event]:
    """Visits over DAYS days: regulars who come back, some on another browser, scenes."""
    people = [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(25)]
    rows: list[Event] = []
    for _ in range(visits):
        who = rng.choice(people[: rng.choice((3, 25))])  # a few regulars come often
        at = datetime.combine(FIRST, datetime.min.time()) + timedelta(
            days=rng.randrange(DAYS), seconds=rng.randrange(86_400)
        )
        tour = rng.choice(TOURS)
        device, browser, os = rng.choice(AGENTS)
        ip = rng.randbytes(16)
        shared = {"tour": tour, "visitor": who, "ip_hash": ip, "device": device,
                  "browser": browser, "os": os}  # fmt: skip
        if rng.random() < 0.8:  # sometimes only scenes: the view was the day before
            first = rng.choice((None, "lobby"))
            came = dict(zip(CAME_FIELDS, rng.choice(CAME), strict=True))
            rows.append(event(ts=at, scene=first, **shared, **came))
        for scene in rng.sample(("lobby", "hall", "roof", "hall"), rng.randrange(4)):
            # now and then a pause past 30 minutes: what follows belongs to no visit
            at += timedelta(minutes=rng.choice((1, 5, 20, 29, 31, 45)))
            rows.append(event(ts=at, kind="scene", scene=scene, **shared))
            if rng.random() < 0.6:
                seconds = rng.randrange(1, 1_801)
                at += timedelta(seconds=rng.randrange(1, 120))
                rows.append(event(ts=at, kind="engage", scene=scene, seconds=seconds, **shared))
        if rng.random() < 0.3:
            at += timedelta(minutes=rng.choice((2, 40)))
            action = rng.choice(("lead-form", "call"))
            rows.append(event(ts=at, kind="action", action=action, **shared))
    rows.sort(key=lambda row: row.ts)
    return rows


def visits_of(events: list[Event], tour: str, start: datetime, end: datetime) -> list[list[Event]]:
    """The visits that began from ``start`` to ``end``, with their events up to ``end``."""
    mine = sorted(
        (e for e in events if e.tour == tour and start <= e.ts < end),
        key=lambda e: (e.visitor, e.ts, e.kind != "view"),
    )
    visits: list[list[Event]] = []
    current: list[Event] | None = None
    last: tuple[str, datetime] | None = None
    for e in mine:
        same = last is not None and last[0] == e.visitor
        if e.kind == "view":
            current = [e]
            visits.append(current)
        elif (
            not same
            or e.ts - last[1] > timedelta(minutes=30)  # type: ignore[index]
            or e.ts.date() != last[1].date()  # type: ignore[index]
        ):
            current = None  # began before start, after a pause, or past UTC midnight
        elif current is not None:
            current.append(e)
        last = (e.visitor, e.ts)
    return visits


def visit_numbers(visits: list[list[Event]]) -> dict[str, Any]:
    """The visit figures of the stats document, from the visits."""
    engaged = sorted(sum(e.seconds or 0 for e in v if e.kind == "engage") for v in visits)
    paths = [
        [e.scene for e in v if e.kind in ("view", "scene") and e.scene is not None] for v in visits
    ]
    n = len(visits)
    middle = (engaged[(n - 1) // 2] + engaged[n // 2]) / 2 if n else 0
    entries: dict[str, int] = defaultdict(int)
    exits: dict[str, int] = defaultdict(int)
    moves: dict[str, int] = defaultdict(int)
    for path in paths:
        if path:
            entries[path[0]] += 1
            exits[path[-1]] += 1
        for move in {f"{a}>{b}" for a, b in itertools.pairwise(path) if a != b}:
            moves[move] += 1
    actions: dict[str, list[str]] = defaultdict(list)
    scene_engaged: dict[str, int] = defaultdict(int)
    for v in visits:
        for e in v:
            if e.kind == "action":
                actions[str(e.action)].append(e.visitor)
            if e.kind == "engage" and e.scene is not None:
                scene_engaged[e.scene] += e.seconds or 0

    def ranked(counts: dict[str, int]) -> list[tuple[str, int]]:
        return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))

    return {
        "totals": {
            "visits": n,
            "engaged_seconds": sum(engaged),
            "engaged_seconds_per_visit": middle,
            "scenes_per_visit": round(sum(len(set(p)) for p in paths) / n, 2) if n else 0,
            "bounce_rate": round(sum(len(set(p)) <= 1 for p in paths) / n, 4) if n else 0,
        },
        "entry_scene": [{"key": k, "visits": c} for k, c in ranked(entries)],
        "exit_scene": [{"key": k, "visits": c} for k, c in ranked(exits)],
        "action": [
            {"key": k, "count": len(who), "visitors": len(set(who))}
            for k, who in sorted(actions.items(), key=lambda kv: (-len(kv[1]), kv[0]))
        ],
        "transitions": [
            {"from": k.split(">")[0], "to": k.split(">")[1], "visits": c} for k, c in ranked(moves)
        ],
        "scene_engaged": dict(scene_engaged),
    }


def expected(events: list[Event], tour: str, period: Period) -> dict[str, Any]:
    """The stats document's numbers, counted one event at a time."""
    mine = [e for e in events if e.tour == tour and period.first <= e.ts.date() <= period.last]
    views = [e for e in mine if e.kind == "view"]

    def count(rows: list[Event]) -> dict[str, int]:
        return {"views": len(rows), "visitors": len({e.visitor for e in rows})}

    def breakdown(rows: list[Event], column: str) -> list[dict[str, Any]]:
        groups: dict[str, list[Event]] = defaultdict(list)
        for e in rows:
            value = getattr(e, column)
            groups[ABSENT[column] if value is None else str(value)].append(e)
        found = [{"key": key, **count(group)} for key, group in groups.items()]
        return sorted(found, key=lambda kv: (-kv["views"], kv["key"]))

    step = timedelta(hours=1) if period.interval == "hour" else timedelta(days=1)
    buckets = [b.replace(tzinfo=None) for b in period.buckets()]
    start, end = (moment.replace(tzinfo=None) for moment in (period.start, period.end))
    cut = visits_of(events, tour, start, end)
    visits = visit_numbers(cut)

    def began(b: datetime) -> dict[str, int]:
        mine = [v for v in cut if b <= v[0].ts < b + step]
        seconds = sum(e.seconds or 0 for v in mine for e in v if e.kind == "engage")
        return {"visits": len(mine), "engaged_seconds": seconds}

    scenes = breakdown([e for e in mine if e.kind == "scene"], "scene")
    for row in scenes:
        row["engaged_seconds"] = visits["scene_engaged"].get(row["key"], 0)
    return {
        "totals": {**count(views), "visitors_exact": True, **visits["totals"]},
        "series": [count([e for e in views if b <= e.ts < b + step]) | began(b) for b in buckets],
        "breakdown": {
            **{column: breakdown(views, column) for column in ("device", "browser", "os")},
            **{column: breakdown(views, column) for column in CAME_FIELDS},
            "scene": scenes,
            "entry_scene": visits["entry_scene"],
            "exit_scene": visits["exit_scene"],
            "action": visits["action"],
        },
        "transitions": visits["transitions"],
    }


def observed(db: Database, tour: str, period: Period) -> dict[str, Any]:
    document = tour_stats(db.cursor(), tour, period)
    return {
        "totals": document["totals"],
        "series": [{k: v for k, v in e.items() if k != "start"} for e in document["series"]],
        "breakdown": document["breakdown"],
        "transitions": document["transitions"],
    }


VIEW_TOTALS = ("views", "visitors", "visitors_exact")


def periods(first: date, last: date) -> Iterator[Period]:
    """Every period of whole days from ``first`` to ``last``, by day, and a few by hour."""
    days = (last - first).days + 1
    for start in range(days):
        for end in range(start, days):
            yield Period(first + timedelta(days=start), first + timedelta(days=end), "day")
    yield Period(first, first, "hour")
    yield Period(last - timedelta(days=1), last, "hour")


def assert_exact(db: Database, events: list[Event], first: date = FIRST) -> None:
    for period in periods(first, TODAY):
        for tour in TOURS:
            assert observed(db, tour, period) == expected(events, tour, period), period
        totals = tour_totals(db.cursor(), list(TOURS), period)
        for tour in TOURS:
            reference = expected(events, tour, period)["totals"]
            assert totals[tour] == {key: reference[key] for key in VIEW_TOTALS}, period


def stored(events: list[Event]) -> Iterator[Database]:
    with tempfile.TemporaryDirectory() as folder:
        db = open_database(Path(folder))
        EventWriter(db).write(events, {})
        try:
            yield db
        finally:
            db.close()


@pytest.fixture
def events() -> list[Event]:
    return traffic(random.Random(7))


@pytest.fixture
def db(events: list[Event]) -> Iterator[Database]:
    yield from stored(events)


# Each example checks every period of ten days, visits included (~5 s): make test runs
# three, make soak thirty (TOURVIEWS_EXACT_EXAMPLES).
@settings(max_examples=int(os.environ.get("TOURVIEWS_EXACT_EXAMPLES", "3")), deadline=None)
@given(seed=st.integers(0, 2**32), rolled=st.integers(0, DAYS - 1))
def test_periods_are_exact_whichever_days_are_rolled_up(seed: int, rolled: int) -> None:
    events = traffic(random.Random(seed))
    for db in stored(events):
        roll_up_completed(db.cursor(), FIRST + timedelta(days=rolled))
        assert_exact(db, events)


def test_a_visitor_on_three_days_counts_once_from_rollups(db: Database) -> None:
    who, ip = str(uuid.uuid4()), bytes(16)
    at = datetime(2026, 11, 2, 9, 0)
    EventWriter(db).write(
        [event(ts=at + timedelta(days=n), tour="t3", visitor=who, ip_hash=ip) for n in (0, 2, 4)],
        {},
    )
    roll_up_completed(db.cursor(), TODAY)
    period = Period(date(2026, 11, 1), TODAY, "day")
    document = tour_stats(db.cursor(), "t3", period)
    totals = {key: document["totals"][key] for key in VIEW_TOTALS}
    assert totals == {"views": 3, "visitors": 1, "visitors_exact": True}
    rows = (
        db.cursor()
        .execute(
            "SELECT day, previous, visitors FROM recency WHERE tour = 't3' AND dimension = 'total' "
            "ORDER BY day"
        )
        .fetchall()
    )
    assert rows == [
        (date(2026, 11, 2), None, 1),
        (date(2026, 11, 4), date(2026, 11, 2), 1),
        (date(2026, 11, 6), date(2026, 11, 4), 1),
    ]


def test_rolling_up_a_day_changes_no_number(db: Database, events: list[Event]) -> None:
    roll_up_completed(db.cursor(), FIRST + timedelta(days=4))
    before = [observed(db, "t1", p) for p in periods(FIRST, TODAY)]
    roll_up_completed(db.cursor(), TODAY)
    assert [observed(db, "t1", p) for p in periods(FIRST, TODAY)] == before


def test_events_committed_after_their_day_was_rolled_up_are_rolled_up_next_time(
    db: Database, events: list[Event]
) -> None:
    roll_up_completed(db.cursor(), TODAY)
    late = [event(ts=datetime(2026, 11, 3, 23, 59, 59), device="mobile",
                  browser="Mobile Safari", os="iOS")]  # fmt: skip
    EventWriter(db).write(late, {})
    assert roll_up_completed(db.cursor(), TODAY) == [date(2026, 11, 3)]
    assert roll_up_completed(db.cursor(), TODAY) == []
    assert_exact(db, sorted(events + late, key=lambda row: row.ts))


def test_erasure_corrects_the_recency_of_every_day_of_the_visitor(
    db: Database, events: list[Event]
) -> None:
    roll_up_completed(db.cursor(), TODAY)
    regular = max({e.visitor for e in events}, key=lambda v: sum(e.visitor == v for e in events))
    assert forget(db.cursor(), regular) == sum(e.visitor == regular for e in events)
    assert_exact(db, [e for e in events if e.visitor != regular])


def test_after_purge_periods_within_retention_stay_exact(db: Database, events: list[Event]) -> None:
    deleted = purge(db.cursor(), TODAY, days=4)  # raw events kept from 2026-11-06
    horizon = TODAY - timedelta(days=4)
    assert deleted == sum(e.ts.date() < horizon for e in events)
    assert db.cursor().execute("SELECT min(day) FROM recency").fetchone() == (horizon,)
    assert_exact(db, events, first=horizon)


def test_a_period_reaching_past_retention_is_estimated_and_its_views_exact(
    db: Database, events: list[Event]
) -> None:
    purge(db.cursor(), TODAY, days=4)
    period = Period(FIRST, TODAY, "day")
    document = tour_stats(db.cursor(), "t1", period)
    reference = expected(events, "t1", period)
    assert document["totals"]["visitors_exact"] is False
    assert document["totals"]["views"] == reference["totals"]["views"]
    assert abs(document["totals"]["visitors"] - reference["totals"]["visitors"]) <= 1
    assert [(e["views"], e["visitors"]) for e in document["series"]] == [
        (e["views"], e["visitors"]) for e in reference["series"]
    ]  # each day on its own is still exact


def test_days_rolled_up_before_recency_existed_are_rolled_up_again(
    db: Database, events: list[Event]
) -> None:
    roll_up_completed(db.cursor(), TODAY)
    cursor = db.cursor()
    cursor.execute("DELETE FROM recency")  # a data directory of the previous version
    cursor.execute("DELETE FROM visitor_days")
    cursor.execute("DELETE FROM meta WHERE key = ?", [EXACT_ROLLUPS])
    period = Period(FIRST, TODAY, "day")
    assert observed(db, "t1", period) == expected(events, "t1", period)  # from raw events
    assert len(roll_up_completed(cursor, TODAY)) == DAYS - 1
    assert read_meta(cursor, EXACT_ROLLUPS) is not None
    assert_exact(db, events)
