"""Completed weeks of raw events, rewritten sorted by tour: the same events, in tour order."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest

from tests.builders import event
from tourviews.analytics.clustering import CLUSTERED, cluster_completed_weeks
from tourviews.analytics.period import Period
from tourviews.analytics.rollup import roll_up_completed
from tourviews.analytics.stats import tour_stats
from tourviews.ingest.store.writer import EventWriter
from tourviews.storage.database import Database, open_database, read_meta
from tourviews.storage.event import COLUMNS, Event

MONDAY = date(2026, 11, 2)


def events(days: int) -> list[Event]:
    """Three tours taking turns, in time order, as the writer appends them."""
    rng = random.Random(3)
    start = datetime.combine(MONDAY, datetime.min.time())
    return [
        event(ts=start + timedelta(minutes=20 * n), tour=f"t{n % 3}",
              visitor=f"00000000-0000-4000-8000-{rng.randrange(40):012x}")
        for n in range(days * 72)
    ]  # fmt: skip


@pytest.fixture
def db(data_dir: Path) -> Iterator[Database]:
    db = open_database(data_dir)
    yield db
    db.close()


def stored(db: Database) -> list[Event]:
    found = db.cursor().execute(f"SELECT {COLUMNS} FROM events ORDER BY rowid").fetchall()
    return [Event(*row) for row in found]


def test_a_completed_week_is_rewritten_once_sorted_by_tour(db: Database) -> None:
    written = events(days=10)
    EventWriter(db).write(written, {})
    today = MONDAY + timedelta(days=10)
    assert cluster_completed_weeks(db.cursor(), today) == [MONDAY]
    assert cluster_completed_weeks(db.cursor(), today) == []
    assert read_meta(db.cursor(), CLUSTERED) == "2026-11-09"
    rows = stored(db)
    assert sorted(rows) == sorted(written)  # the same events, none lost or doubled
    week = [row for row in rows if row.ts < datetime(2026, 11, 9)]
    assert week == sorted(week, key=lambda row: (row.tour, row.ts))
    rest = [row for row in rows if row.ts >= datetime(2026, 11, 9)]
    assert rest == sorted(rest, key=lambda row: row.ts)  # the running week keeps time order


def test_the_stats_do_not_change_when_a_week_is_sorted(db: Database) -> None:
    EventWriter(db).write(events(days=9), {})
    today = MONDAY + timedelta(days=9)
    roll_up_completed(db.cursor(), today)
    period = Period(MONDAY, today, "day")
    before = [tour_stats(db.cursor(), f"t{n}", period) for n in range(3)]
    cluster_completed_weeks(db.cursor(), today)
    assert [tour_stats(db.cursor(), f"t{n}", period) for n in range(3)] == before


def test_an_empty_data_directory_has_nothing_to_sort(db: Database) -> None:
    assert cluster_completed_weeks(db.cursor(), MONDAY) == []
    assert read_meta(db.cursor(), CLUSTERED) is None
