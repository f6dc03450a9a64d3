"""The organization's overview: each tour's totals, the period before's, and views per day.

A dashboard landing on an organization of hundreds of tours cannot ask for hundreds of
stats documents. This read costs the same few queries whatever the number of tours:
the views and visitors of both periods (``tour_totals``, exact as in the stats
documents), and one query for the views, visits and engaged seconds of every tour and
day of both periods.

That query reads the daily rollups of the rolled-up days (in another zone than UTC,
their 15-minute ``quarters``: whole UTC buckets, so that any zone's days add up
exactly, at some 96 times the rows) and cuts the raw events of the days after them into
visits, as ``tourviews.analytics.visits`` does: a visit begins with its view, so the
visits of a day are its views, and a visit's engaged seconds count on the day it began.
Each row finds its local day by an as-of join on the days' UTC starts.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any

import duckdb

from tourviews.analytics.kept import kept, reading
from tourviews.analytics.kept import rows as kept_rows
from tourviews.analytics.period import Period
from tourviews.analytics.stats import tour_totals
from tourviews.storage.database import one
from tourviews.storage.visit import IDLE_SECONDS

# The rolled-up days: UTC days from the daily rollups (a row per tour, day and figure;
# the engaged seconds are a histogram there), other zones' from the quarters.
DAILY = """
    SELECT tour, day::TIMESTAMP AS at,
        CASE dimension WHEN 'total' THEN views ELSE 0 END AS views,
        CASE dimension WHEN 'visits' THEN views ELSE 0 END AS visits,
        CASE dimension WHEN 'engaged' THEN views * key::BIGINT ELSE 0 END AS engaged
    FROM rollups
    WHERE tour IN (SELECT unnest($tours)) AND day >= $start::DATE AND day < $fresh::DATE
        AND dimension IN ('total', 'visits', 'engaged')
"""
QUARTERS = """
    SELECT tour, start AS at,
        CASE dimension WHEN 'total' THEN amount ELSE 0 END AS views,
        CASE dimension WHEN 'visits' THEN amount ELSE 0 END AS visits,
        CASE dimension WHEN 'engaged' THEN amount ELSE 0 END AS engaged
    FROM quarters
    WHERE tour IN (SELECT unnest($tours)) AND start >= $start AND start < $fresh
        AND dimension IN ('total', 'visits', 'engaged')
"""
# The rows of either part, each by its local day ('' for the period before).
DAYS = """
WITH days AS (SELECT unnest($starts) AS start, unnest($labels) AS label)
SELECT a.tour, CASE WHEN d.label < $first THEN '' ELSE d.label END,
    sum(views)::BIGINT, sum(visits)::BIGINT, sum(engaged)::BIGINT
FROM ({amounts}) a
ASOF JOIN days d ON a.at >= d.start
GROUP BY ALL
"""
# The days after them: their raw events cut into visits.
FRESH = f"""
WITH ev AS MATERIALIZED (
    SELECT tour, visitor, ts, kind, scene, seconds, ts::DATE AS day,
        coalesce(kind = 'view' OR ts - lag(ts) OVER w > INTERVAL {IDLE_SECONDS} SECOND,
            kind = 'view') AS starts
    FROM events WHERE tour IN (SELECT unnest($tours)) AND ts >= $fresh AND ts < $end
    WINDOW w AS (PARTITION BY tour, visitor, ts::DATE ORDER BY ts, kind <> 'view', scene)
),
runs AS (
    SELECT *, sum(starts::INTEGER) OVER (
        PARTITION BY tour, visitor, day ORDER BY ts, kind <> 'view', scene ROWS UNBOUNDED PRECEDING
    ) AS run
    FROM ev
)
SELECT tour, min(ts) AS at, 1 AS views, 1 AS visits, coalesce(sum(seconds), 0) AS engaged
FROM runs
WHERE run > 0  -- run 0: the day's events before its first view, of a visit begun earlier
GROUP BY tour, visitor, day, run
HAVING arg_min(kind, {{'ts': ts, 'later': kind <> 'view'}}) = 'view'
"""

DAY = timedelta(days=1)
ADDED = ("visits", "engaged_seconds")  # to the totals of tour_totals


def overview(
    cursor: duckdb.DuckDBPyConnection, tours: list[str], period: Period
) -> dict[str, dict[str, Any]]:
    """Each of ``tours`` over ``period`` (of days, in one zone) and the period before:
    ``{"totals", "previous", "views_by_day"}``, the totals holding views, visitors
    (exact as in the stats document, or ``visitors_exact`` false), visits and engaged
    seconds, and ``views_by_day`` one count per day of ``period``."""
    before = period.before()
    days = (period.last - period.first).days + 1
    with reading(cursor):
        current = tour_totals(cursor, tours, period)
        # The period before is usually whole rolled-up days: kept, as the stats' own is.
        last = (before.end.astimezone(UTC) - timedelta(microseconds=1)).date()
        key = ("overview", tuple(tours), before.first, before.last, before.zone.key)
        previous = kept(cursor, key, last, lambda: tour_totals(cursor, tours, before),
                        lambda found: 200 * len(found))  # fmt: skip
        rows = _days(cursor, tours, before, period)
    found: dict[str, dict[str, Any]] = {
        tour: {
            "totals": {**current[tour], **dict.fromkeys(ADDED, 0)},
            "previous": {**previous[tour], **dict.fromkeys(ADDED, 0)},
            "views_by_day": [0] * days,
        }
        for tour in tours
    }
    place = {(period.first + timedelta(days=n)).isoformat(): n for n in range(days)}
    for tour, label, views, visits, engaged in rows:
        entry = found[tour]
        sums = entry["previous"] if label == "" else entry["totals"]
        sums["visits"] += visits
        sums["engaged_seconds"] += engaged
        if label:
            entry["views_by_day"][place[label]] += views
    return found


def _days(
    cursor: duckdb.DuckDBPyConnection, tours: list[str], before: Period, period: Period
) -> list[tuple[str, str, int, int, int]]:
    """Rows of (tour, local day or '' for the period before, views, visits, engaged seconds)."""
    days = [before.first + timedelta(days=n) for n in range((period.last - before.first).days + 1)]
    start, end = _naive(before.start), _naive(period.end)
    row = one(cursor, "SELECT max(day) FROM rolled_days WHERE day <= ?", [end.date()])
    rolled = None if row is None else row[0]
    # Raw events from the first day not rolled up: a UTC midnight, or the period's start.
    fresh = start if rolled is None else max(start, datetime.combine(rolled + DAY, time()))
    parameters = {
        "starts": [_naive(Period(day, day, "day", period.zone).start) for day in days],
        "labels": [day.isoformat() for day in days],
        "tours": tours, "fresh": fresh, "first": period.first.isoformat(),
    }  # fmt: skip
    rows: list[tuple[str, str, int, int, int]] = []
    if fresh > start:  # the rolled-up days cannot change: kept, read again and again
        query = DAYS.format(amounts=DAILY if period.in_utc else QUARTERS)
        last = (fresh - timedelta(microseconds=1)).date()
        rows += kept_rows(cursor, query, parameters | {"start": start}, last)
    if fresh < end:
        query = DAYS.format(amounts=FRESH)
        rows += cursor.execute(query, parameters | {"end": end}).fetchall()
    return rows


def _naive(moment: datetime) -> datetime:
    """A moment as the events' ``ts``: UTC without its zone."""
    return moment.astimezone(UTC).replace(tzinfo=None)
