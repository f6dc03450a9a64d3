"""Per-day aggregates of counted events, made once a UTC day is complete.

They outlive the raw events (retention deletes raw events only once their day is
rolled up) and answer for days whose raw events are gone. One row per tour, day,
dimension and key: the day's total, each hour, each device class, browser, OS and
scene, with views and the exact distinct visitors of that day and key.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

import duckdb

from analytics.stats import BREAKDOWNS, groupings

ROLL_UP = f"""
INSERT INTO rollups (tour, day, dimension, key, views, visitors)
WITH hits AS MATERIALIZED (
    SELECT tour, ts, kind, scene, visitor, device, browser, os
    FROM events WHERE ts >= $start AND ts < $end
)
SELECT tour, $day, * EXCLUDE (tour) FROM (
{groupings([("total", "''", "view"), ("hour", "strftime(ts, '%H')", "view"), *BREAKDOWNS], "tour")}
)
"""  # fmt: skip


def roll_up_day(cursor: duckdb.DuckDBPyConnection, day: date) -> None:
    """(Re)compute the aggregates of ``day`` from its raw events, in one transaction."""
    start = datetime.combine(day, time())
    cursor.begin()
    try:
        cursor.execute("DELETE FROM rollups WHERE day = ?", [day])
        cursor.execute(ROLL_UP, {"day": day, "start": start, "end": start + timedelta(days=1)})
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
