"""Retention: raw events live ``--raw-retention-days``, abuse rows keep an IP hash 7 days.

Raw events are deleted only once their day is rolled up, so the daily aggregates
and sketches keep answering for those days. Drop counters older than 7 days lose
their IP hash: they are merged into one row per hour, tour and reason.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

import duckdb

from tourviews.analytics.parts import RAW_FROM, raw_from
from tourviews.analytics.rollup import roll_up_completed
from tourviews.storage.database import (
    mark_changed,
    mark_erased,
    one,
    read_meta,
    transaction,
    write_meta,
)
from tourviews.storage.drops import fold_drop_log

SOURCE_DAYS = 7
RETENTION = "raw_retention_days"  # meta key: the setting of the last server on this data
DEFAULT_RETENTION_DAYS = 30


def retention_days(cursor: duckdb.DuckDBPyConnection) -> int:
    """The raw retention the service was last started with (the default before that)."""
    value = read_meta(cursor, RETENTION)
    return int(value) if value else DEFAULT_RETENTION_DAYS


def purge(cursor: duckdb.DuckDBPyConnection, today: date, days: int) -> int:
    """Apply retention as of ``today``; returns how many raw events were deleted."""
    roll_up_completed(cursor, today)
    fold_drop_log(cursor)
    horizon = today - timedelta(days=days)
    cut = datetime.combine(today - timedelta(days=SOURCE_DAYS), time())
    with transaction(cursor):
        row = one(
            cursor,
            "DELETE FROM events WHERE ts < ? AND ts::DATE IN (SELECT day FROM rolled_days)",
            [datetime.combine(horizon, time())],
        )
        if row and row[0]:
            mark_erased(cursor)
        mark_changed(cursor)
        for table in ("recency", "visitor_days"):  # they are made from the raw events
            cursor.execute(f"DELETE FROM {table} WHERE day < ?", [horizon])
        if horizon > raw_from(cursor):
            write_meta(cursor, RAW_FROM, horizon.isoformat())
        cursor.execute(
            "INSERT INTO drops SELECT hour, tour, ''::BLOB, reason, sum(beacons) FROM drops "
            "WHERE hour < ? AND ip_hash != ''::BLOB GROUP BY ALL "
            "ON CONFLICT DO UPDATE SET beacons = drops.beacons + excluded.beacons",
            [cut],
        )
        cursor.execute("DELETE FROM drops WHERE hour < ? AND ip_hash != ''::BLOB", [cut])
    return int(row[0]) if row else 0
