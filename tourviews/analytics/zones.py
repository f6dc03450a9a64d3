"""Periods in a time zone other than UTC: the raw events, and the 15-minute buckets before them.

The daily rollups are UTC days, and a day of another zone is never one of them. Its
days and hours are whole 15-minute UTC buckets, though (every zone's offset is a
multiple of 15 minutes), so beyond raw retention the ``quarters`` rows answer for
the views: they add up exactly. The buckets keep no visitors (a sketch that fine
would tell when one visitor came): the visitors, and the breakdowns, are those of the
UTC days the period touches (``visitors_exact`` and ``breakdowns_exact`` are false).
Within raw retention the raw events answer, exactly. Each event or bucket
finds its interval of the period by an as-of join on the intervals' UTC starts, which
Python's zoneinfo computes: DST changes included, and no second time zone database.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, timedelta

import duckdb

from tourviews.analytics.breakdowns import (
    TOTAL,
    counted,
    groupings,
    key_columns,
    parts,
    quoted,
    rolled_up,
)
from tourviews.analytics.parts import Cell, Cells, Series
from tourviews.analytics.period import Period

INTERVALS = "(SELECT unnest($starts) AS start, unnest($labels) AS label)"


def raw_query(ids: bool) -> str:
    """The raw events of the period, each with its interval's label, grouped per part.
    ``ids``: list the visitor IDs, to be merged with sketches."""
    raw = f"""
WITH hits AS MATERIALIZED (
    SELECT e.*, i.label
    FROM (
        SELECT ts, kind, visitor::VARCHAR AS visitor, {key_columns(counted())} FROM events
        WHERE tour = $tour AND ts >= $start AND ts < $end AND kind IN ('view', 'scene')
    ) e
    ASOF JOIN {INTERVALS} i ON e.ts >= i.start
)
"""
    grouped = [TOTAL, ("series", "label", "view"), *parts(counted())]
    return raw + groupings(grouped, ids=ids)


QUARTERS = f"""
SELECT i.label, q.start, q.amount
FROM (
    SELECT * FROM quarters WHERE tour = $tour AND start >= $start AND start < $end
        AND dimension = 'total'
) q
ASOF JOIN {INTERVALS} i ON q.start >= i.start
"""


def days_query() -> str:
    """Visitors and breakdowns are kept per UTC day: those of the UTC days the period touches."""
    return f"""
SELECT day, dimension, key, views, sketch FROM rollups
WHERE tour = $tour AND day BETWEEN $first AND $last
    AND dimension IN ({quoted(["total", *(b.name for b in rolled_up())])})
"""


def label(start: datetime) -> str:
    """An interval's start as the document shows it: local time with its offset."""
    return start.isoformat()


def zoned_stats(
    cursor: duckdb.DuckDBPyConnection, tour: str, period: Period, horizon: datetime
) -> tuple[Series, Cells]:
    """The series and cells of ``tour`` over ``period``; raw events from ``horizon`` (naive UTC)."""
    starts = period.buckets()
    intervals = {
        "starts": [s.astimezone(UTC).replace(tzinfo=None) for s in starts],
        "labels": [label(s) for s in starts],
    }
    start, end = (moment.replace(tzinfo=None) for moment in (period.start, period.end))
    cells: Cells = defaultdict(Cell)
    intervals_of: dict[str, Cell] = defaultdict(Cell)
    if end > horizon:
        mixed = start < horizon
        rows = cursor.execute(
            raw_query(ids=mixed),
            {"tour": tour, "start": max(start, horizon), "end": end, **intervals},
        ).fetchall()
        for part, key, views, visitors in rows:
            ids = (visitors or []) if mixed else []
            found = len(ids) if mixed else visitors
            target = intervals_of[key] if part == "series" else cells[part, key]
            target.add(views, found, None, ids)
    if start < horizon:
        before = min(end, horizon)
        last = (before - timedelta(microseconds=1)).date()
        days = {"tour": tour, "first": start.date(), "last": last}
        visitors_of: dict[date, bytes] = {}
        for day, dimension, key, views, sketch in cursor.execute(days_query(), days).fetchall():
            if dimension == "total":
                visitors_of[day] = sketch
            else:
                cells[dimension, key].add_sketch(views, sketch)
        rows = cursor.execute(
            QUARTERS, {"tour": tour, "start": start, "end": before, **intervals}
        ).fetchall()
        touched: dict[str, set[date]] = defaultdict(set)
        for interval, quarter, views in rows:
            cells["total", ""].add_sketch(views, None)
            intervals_of[interval].add_sketch(views, None)
            touched[interval].add(quarter.date())
        # an interval's visitors: those of the UTC days it touches (an estimate over them)
        for interval, utc_days in touched.items():
            for day in utc_days:
                intervals_of[interval].add_sketch(0, visitors_of.get(day))
        for day in set().union(*touched.values()):
            cells["total", ""].add_sketch(0, visitors_of.get(day))
    series = {key: (cell.views, cell.distinct()) for key, cell in intervals_of.items()}
    return series, cells
