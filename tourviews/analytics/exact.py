"""Periods within raw retention, answered exactly without reading all their raw events.

Days are rolled up in order, so a period's rolled-up days come first and the days
after them (today, usually) have only raw events. The rolled-up days answer from
their recency rows: per day and key the views and visitors, by the previous day each
visitor was seen with that key (see ``tourviews.analytics.rollup``). A visitor is new to the
period on the day whose previous day falls before it, so the period's distinct
visitors are a sum. The days after them answer from raw events, and their visitors
count as new unless seen with the same key on the period's earlier days (in the
raw events of one tour, or in ``visitor_days`` for an organization's tours).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, time, timedelta

import duckdb

from tourviews.analytics.breakdowns import keys
from tourviews.analytics.kept import rows as kept_rows
from tourviews.analytics.parts import EPOCH, RAW_FROM, Cell, Cells, Series, day_key
from tourviews.analytics.period import Period
from tourviews.storage.database import one

# meta key: set once every rolled-up day whose raw events are kept has its recency and
# visitor_days rows
EXACT_ROLLUPS = "exact_rollups"
DAY = timedelta(days=1)

# Rolled-up days, from recency: per day and key the views, the day's visitors, and
# the visitors new to the period (their previous day falls before it).
ROLLED = """
SELECT dimension, key, day, sum(views), sum(visitors),
    sum(visitors) FILTER (previous IS NULL OR previous < $first)
FROM recency WHERE tour = $tour AND day BETWEEN $first AND $last
GROUP BY ALL
"""
ROLLED_HOURS = """
SELECT day, key, views, visitors FROM rollups
WHERE tour = $tour AND dimension = 'hour' AND day BETWEEN $first AND $last
"""


def fresh_query() -> str:
    """The days after them, from raw events: the period's events of the visitors who came
    on those days. Per part and key: views and distinct visitors on those days, and the
    visitors new to the period (first seen on one of them)."""
    return f"""
SELECT k.part, k.key, sum(views), count(*) FILTER (views > 0), count(*) FILTER (first >= $fresh)
FROM (
    SELECT k, visitor, count(*) FILTER (ts >= $fresh) AS views, min(ts) AS first
    FROM (
        SELECT ts, visitor, unnest({keys(
            "{'part': 'series', 'key': CASE WHEN ts >= $fresh THEN "
            "strftime(date_trunc($interval, ts), '%Y-%m-%dT%H:%M:%SZ') END}"
        )}) AS k
        FROM events
        WHERE tour = $tour AND ts >= $start AND ts < $end AND kind IN ('view', 'scene')
            AND visitor IN (
            SELECT visitor FROM events WHERE tour = $tour AND ts >= $fresh AND ts < $end
        )
    )
    GROUP BY ALL
)
GROUP BY ALL
HAVING sum(views) > 0
"""  # fmt: skip


TOTALS_ROLLED = """
SELECT tour, sum(views), sum(visitors) FILTER (previous IS NULL OR previous < $first)
FROM recency
WHERE dimension = 'total' AND tour IN (SELECT unnest($tours)) AND day BETWEEN $first AND $last
GROUP BY tour
"""
TOTALS_FRESH = """
WITH hits AS MATERIALIZED (
    SELECT tour, visitor, count(*) AS views FROM events
    WHERE kind = 'view' AND tour IN (SELECT unnest($tours)) AND ts >= $fresh AND ts < $end
    GROUP BY ALL
),
earlier AS (
    SELECT DISTINCT tour, visitor FROM visitor_days
    WHERE day >= $start::DATE AND day < $fresh::DATE AND visitor IN (SELECT visitor FROM hits)
)
SELECT hits.tour, sum(views), count(*) FILTER (earlier.visitor IS NULL)
FROM hits LEFT JOIN earlier ON hits.tour = earlier.tour AND hits.visitor = earlier.visitor
GROUP BY hits.tour
"""


def fresh_from(cursor: duckdb.DuckDBPyConnection, period: Period) -> date | None:
    """The day after the period's rolled-up days: from there on, raw events answer.

    None when the period cannot be answered here: it reaches past raw retention, or
    the rolled-up days do not have their recency rows yet.
    """
    row = one(
        cursor,
        "SELECT (SELECT value FROM meta WHERE key = ?), (SELECT value FROM meta WHERE key = ?), "
        "(SELECT max(day) FROM rolled_days WHERE day BETWEEN ? AND ?)",
        [RAW_FROM, EXACT_ROLLUPS, period.first, period.last],
    )
    assert row is not None
    horizon, exact, rolled = row
    if exact is None or period.first < (date.fromisoformat(horizon) if horizon else EPOCH):
        return None
    return period.first if rolled is None else rolled + DAY


def exact_stats(
    cursor: duckdb.DuckDBPyConnection, tour: str, period: Period, fresh: date
) -> tuple[Series, Cells]:
    """The series and the cells of ``tour``'s stats document, exact."""
    series: Series = {}
    cells: Cells = defaultdict(Cell)
    rolled = {"tour": tour, "first": period.first, "last": fresh - DAY}
    if fresh > period.first:
        for dimension, key, day, views, visitors, new in kept_rows(
            cursor, ROLLED, rolled, fresh - DAY
        ):
            if dimension == "total" and period.interval == "day":
                series[day_key(day)] = (views, visitors)
            cells[dimension, key].views += views
            cells[dimension, key].visitors += new or 0
        if period.interval == "hour":
            for day, hour, views, visitors in kept_rows(cursor, ROLLED_HOURS, rolled, fresh - DAY):
                series[day_key(day, hour)] = (views, visitors)
    if fresh <= period.last:
        rows = cursor.execute(
            fresh_query(),
            {"tour": tour, "start": datetime.combine(period.first, time()),
             "fresh": datetime.combine(fresh, time()), "end": period.end.replace(tzinfo=None),
             "interval": period.interval},
        ).fetchall()  # fmt: skip
        for part, key, views, visitors, new in rows:
            if part == "series":
                series[key] = (views, visitors)
            else:
                cells[part, key].views += views
                cells[part, key].visitors += new
    return series, cells


def exact_totals(
    cursor: duckdb.DuckDBPyConnection, tours: list[str], period: Period, fresh: date
) -> dict[str, Cell]:
    """The total views and visitors of each of ``tours``, exact."""
    cells: dict[str, Cell] = defaultdict(Cell)
    if fresh > period.first:
        rows = cursor.execute(
            TOTALS_ROLLED, {"tours": tours, "first": period.first, "last": fresh - DAY}
        ).fetchall()
    else:
        rows = []
    if fresh <= period.last:
        rows += cursor.execute(
            TOTALS_FRESH,
            {"tours": tours, "start": datetime.combine(period.first, time()),
             "fresh": datetime.combine(fresh, time()), "end": period.end.replace(tzinfo=None)},
        ).fetchall()  # fmt: skip
    for tour, views, visitors in rows:
        cells[tour].views += views
        cells[tour].visitors += visitors or 0
    return cells
