"""Per-day aggregates of counted events, made once a UTC day is complete.

They outlive the raw events (retention deletes raw events only once their day is
rolled up) and answer for days whose raw events are gone. One row per tour, day,
dimension and key: the day's total, each hour, each device class, browser, OS and
scene, with views, the exact distinct visitors of that day and key, and (but for
hours) a sketch of those visitors so that days can be merged.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

import duckdb
import pyarrow as pa

from analytics.sketch import sketch_of
from analytics.stats import BREAKDOWNS, groupings

VISITOR_LISTS = f"""
WITH hits AS MATERIALIZED (
    SELECT tour, ts, kind, scene, visitor::VARCHAR AS visitor, device, browser, os
    FROM events WHERE ts >= $start AND ts < $end
)
{groupings(
    [("total", "''", "view"), ("hour", "strftime(ts, '%H')", "view"), *BREAKDOWNS],
    by="tour", visitors="list(DISTINCT visitor)",
)}
"""  # fmt: skip

ROLLUPS = pa.schema(
    [
        ("tour", pa.string()),
        ("day", pa.date32()),
        ("dimension", pa.string()),
        ("key", pa.string()),
        ("views", pa.int64()),
        ("visitors", pa.int64()),
        ("sketch", pa.binary()),
    ]
)


def roll_up_day(cursor: duckdb.DuckDBPyConnection, day: date) -> None:
    """(Re)compute the aggregates of ``day`` from its raw events, in one transaction."""
    start = datetime.combine(day, time())
    groups = cursor.execute(VISITOR_LISTS, {"start": start, "end": start + timedelta(days=1)})
    rows = [
        (tour, day, part, key, views, len(visitors),
         None if part == "hour" else sketch_of(visitors))
        for tour, part, key, views, visitors in groups.fetchall()
    ]  # fmt: skip
    table = pa.Table.from_pylist(
        [dict(zip(ROLLUPS.names, row, strict=True)) for row in rows], ROLLUPS
    )
    cursor.begin()
    try:
        cursor.execute("DELETE FROM rollups WHERE day = ?", [day])
        cursor.register("day_rollups", table)
        cursor.execute("INSERT INTO rollups SELECT * FROM day_rollups")
        cursor.unregister("day_rollups")
        cursor.execute("INSERT OR IGNORE INTO rolled_days VALUES (?)", [day])
        cursor.commit()
    except BaseException:
        cursor.rollback()
        raise


def roll_up_completed(cursor: duckdb.DuckDBPyConnection, today: date) -> list[date]:
    """Roll up every day before ``today`` that has raw events and no aggregates yet."""
    pending = cursor.execute(
        "SELECT DISTINCT ts::DATE AS day FROM events WHERE ts < ? "
        "AND ts::DATE NOT IN (SELECT day FROM rolled_days) ORDER BY day",
        [datetime.combine(today, time())],
    ).fetchall()
    days = [day for (day,) in pending]
    for day in days:
        roll_up_day(cursor, day)
    return days
