"""Days of any time zone, within raw retention and beyond it, against a count one event at a time."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from tests.analytics.test_exact import FIRST, TODAY, stored, traffic, visit_numbers, visits_of
from tourviews.analytics.period import Period
from tourviews.analytics.retention import purge
from tourviews.analytics.rollup import roll_up_completed
from tourviews.analytics.stats import tour_stats
from tourviews.storage.database import Database
from tourviews.storage.event import Event

ZONES = ("Asia/Kathmandu", "Asia/Kolkata", "America/St_Johns", "Europe/Berlin", "UTC")


@pytest.fixture(scope="module")
def events() -> list[Event]:
    # Berlin leaves summer time on 2026-10-25: the traffic spans it
    return [e._replace(ts=e.ts - timedelta(days=9)) for e in traffic(random.Random(11), visits=300)]


@pytest.fixture(scope="module")
def purged(events: list[Event]) -> Iterator[Database]:
    for db in stored(events):
        purge(db.cursor(), TODAY, days=3)  # raw events kept from 2026-11-07
        yield db


def local_views(events: list[Event], tour: str, period: Period) -> list[int]:
    """Views per interval of the period, each event placed by zoneinfo."""
    starts = [s.astimezone(UTC).replace(tzinfo=None) for s in period.buckets()]
    end = period.end.replace(tzinfo=None)
    counts = [0] * len(starts)
    for e in events:
        if e.tour == tour and e.kind == "view" and starts[0] <= e.ts < end:
            counts[max(i for i, s in enumerate(starts) if s <= e.ts)] += 1
    return counts


@pytest.mark.parametrize("zone", ZONES)
def test_views_of_every_local_day_are_exact_beyond_retention(
    purged: Database, events: list[Event], zone: str
) -> None:
    period = Period(FIRST - timedelta(days=8), TODAY - timedelta(days=1), "day", ZoneInfo(zone))
    document = tour_stats(purged.cursor(), "t1", period)
    assert [e["views"] for e in document["series"]] == local_views(events, "t1", period)
    assert document["totals"]["views"] == sum(local_views(events, "t1", period))
    # each counted view begins a visit: the visits of each local day are exact too
    assert [e["visits"] for e in document["series"]] == local_views(events, "t1", period)
    assert document["totals"]["visits"] == document["totals"]["views"]
    assert document["breakdowns_exact"] is (zone == "UTC")
    offset = datetime.combine(period.first, datetime.min.time(), ZoneInfo(zone)).isoformat()[19:]
    assert document["series"][0]["start"] == f"{period.first}T00:00:00" + (
        "Z" if zone == "UTC" else offset
    )


def test_a_day_leaving_summer_time_has_25_hours(purged: Database, events: list[Event]) -> None:
    period = Period(date(2026, 10, 25), date(2026, 10, 25), "hour", ZoneInfo("Europe/Berlin"))
    document = tour_stats(purged.cursor(), "t1", period)
    starts = [e["start"] for e in document["series"]]
    assert len(starts) == 25
    assert starts[2:4] == ["2026-10-25T02:00:00+02:00", "2026-10-25T02:00:00+01:00"]
    assert [e["views"] for e in document["series"]] == local_views(events, "t1", period)


@pytest.mark.parametrize("zone", ZONES)
def test_within_retention_every_number_of_a_local_period_is_exact(
    purged: Database, events: list[Event], zone: str
) -> None:
    period = Period(date(2026, 11, 8), TODAY - timedelta(days=1), "day", ZoneInfo(zone))
    document = tour_stats(purged.cursor(), "t1", period)
    start, end = (m.replace(tzinfo=None) for m in (period.start, period.end))
    views = [e for e in events if e.tour == "t1" and e.kind == "view" and start <= e.ts < end]
    assert document["totals"]["visitors"] == len({e.visitor for e in views})
    assert document["totals"]["visitors_exact"] is True
    expected = visit_numbers(visits_of(events, "t1", start, end))
    assert {k: document["totals"][k] for k in expected["totals"]} == expected["totals"]
    assert document["transitions"] == expected["transitions"]


def test_beyond_retention_visits_are_cut_at_the_utc_midnight_after_their_start(
    purged: Database, events: list[Event]
) -> None:
    period = Period(FIRST - timedelta(days=8), date(2026, 11, 6), "day")
    document = tour_stats(purged.cursor(), "t1", period)
    days = [period.first + timedelta(days=n) for n in range((period.last - period.first).days + 1)]
    visits = [
        v
        for day in days
        for start in [datetime.combine(day, datetime.min.time())]
        for v in visits_of(events, "t1", start, start + timedelta(days=1))
    ]
    expected = visit_numbers(visits)
    assert {k: document["totals"][k] for k in expected["totals"]} == expected["totals"]
    assert document["breakdown"]["entry_scene"] == expected["entry_scene"]
    assert document["breakdown"]["action"] == expected["action"]


def test_rolling_up_makes_the_quarters_of_days_rolled_up_before_them(
    events: list[Event],
) -> None:
    for db in stored(events):
        roll_up_completed(db.cursor(), TODAY)
        cursor = db.cursor()
        cursor.execute("DELETE FROM quarters")  # a data directory of the previous version
        assert len(roll_up_completed(cursor, TODAY)) > 0
        period = Period(FIRST - timedelta(days=8), TODAY, "day", ZoneInfo("Asia/Kolkata"))
        purge(cursor, TODAY, days=1)
        document = tour_stats(cursor, "t1", period)
        assert [e["views"] for e in document["series"]] == local_views(events, "t1", period)


@pytest.mark.parametrize("zone", ["Asia/Kathmandu", "America/St_Johns"])
def test_a_local_period_wholly_beyond_retention_counts_its_own_visits_alone(
    purged: Database, events: list[Event], zone: str
) -> None:
    period = Period(FIRST - timedelta(days=8), FIRST - timedelta(days=6), "day", ZoneInfo(zone))
    document = tour_stats(purged.cursor(), "t1", period)
    views = local_views(events, "t1", period)
    assert [e["visits"] for e in document["series"]] == views  # each view begins a visit
    assert document["totals"]["visits"] == sum(views)
    assert document["previous"]["visits"] == sum(local_views(events, "t1", period.before()))


def test_the_quarters_keep_no_sketch_of_visitors(purged: Database) -> None:
    rows = purged.cursor().execute("SELECT count(*), count(sketch) FROM quarters").fetchall()
    assert rows[0][0] > 0 and rows[0][1] == 0
