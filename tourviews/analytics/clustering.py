"""Raw events (and what is made of them, rollups included) of each completed week,
rewritten sorted by tour.

The writer appends events in time order (and a rollup writes a day's rows for all
tours at once), so a tour's rows are spread over every row group of their days and
a query for one tour reads all of them. DuckDB keeps min/max statistics per row
group (122,880 rows); once a week's rows are sorted by tour, each of its row groups
holds a slice of the tours and a query for one tour skips the others. A week, not a
day: a day of traffic fills about one row group, which sorted alone would still
span every tour.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

import duckdb

from tourviews.storage.database import one, read_meta, transaction, write_meta

WEEK = timedelta(days=7)
CLUSTERED = "clustered_until"  # meta key: the rows before this Monday are sorted by tour
# (table, its day column, its order): a tour's rows together. Recency rows are sorted
# by dimension first: an organization's listing reads only its totals.
TABLES = (
    ("events", "ts", "tour, ts"),
    ("recency", "day", "dimension, tour, day, key"),
    ("visitor_days", "day", "tour, day, visitor"),
    ("rollups", "day", "tour, day, dimension, key"),
    ("quarters", "start", "tour, start, dimension"),
)


KEYED = frozenset(("rollups", "quarters"))  # tables with a primary key


def _monday(day: date) -> date:
    return day - timedelta(days=day.weekday())


def cluster_completed_weeks(cursor: duckdb.DuckDBPyConnection, today: date) -> list[date]:
    """Sort the raw events of each week that ended before ``today`` by tour; its Mondays."""
    value = read_meta(cursor, CLUSTERED)
    if value is None:
        row = one(cursor, "SELECT min(ts)::DATE FROM events")
        if row is None or row[0] is None:
            return []
        value = _monday(row[0]).isoformat()
    weeks = []
    monday = date.fromisoformat(value)
    while monday + WEEK <= today:
        _rewrite(cursor, monday)
        weeks.append(monday)
        monday += WEEK
    return weeks


def _rewrite(cursor: duckdb.DuckDBPyConnection, monday: date) -> None:
    bounds = [datetime.combine(monday, time()), datetime.combine(monday + WEEK, time())]
    with transaction(cursor):
        for table, day, order in TABLES:
            if table in KEYED:
                # A primary key forbids a copy beside the original: set the rows aside,
                # delete them, and put them back sorted. Nothing else writes a week ago.
                cursor.execute(
                    f"CREATE TEMP TABLE week_rows AS SELECT * FROM {table} "
                    f"WHERE {day} >= ? AND {day} < ? ORDER BY {order}",
                    bounds,
                )
                cursor.execute(f"DELETE FROM {table} WHERE {day} >= ? AND {day} < ?", bounds)
                cursor.execute(f"INSERT INTO {table} SELECT * FROM week_rows")
                cursor.execute("DROP TABLE week_rows")
                continue
            # The copies are appended after every row that exists now: the originals are
            # those up to the current last row ID. The writer appends only today's events.
            row = one(cursor, f"SELECT max(rowid) FROM {table}")
            last = -1 if row is None or row[0] is None else row[0]
            cursor.execute(
                f"INSERT INTO {table} SELECT * FROM {table} "
                f"WHERE {day} >= ? AND {day} < ? ORDER BY {order}",
                bounds,
            )
            cursor.execute(
                f"DELETE FROM {table} WHERE {day} >= ? AND {day} < ? AND rowid <= ?",
                [*bounds, last],
            )
        write_meta(cursor, CLUSTERED, (monday + WEEK).isoformat())
