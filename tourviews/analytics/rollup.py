"""Per-day aggregates of counted events, made once a UTC day is complete.

They outlive the raw events (retention deletes raw events only once their day is
rolled up) and answer for days whose raw events are gone. One row per tour, day,
dimension and key: the day's total, each hour, each device class, browser, OS and
scene, with views, the exact distinct visitors of that day and key, and (but for
hours) a sketch of those visitors so that days can be merged.

While a day's raw events are kept it also has recency rows: its visitors of each
key (and their views) counted by the previous day they were seen with that key
(NULL: not among the raw events). Over a period of such days, the visitors new to
the period are those whose previous day falls before it, each counted once, on
their first day in it: the period's distinct visitors are a sum, still exact. And
visitor_days lists who came each day with a view, to tell whether today's visitors
are new to a period.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

import duckdb
import pyarrow as pa

from tourviews.analytics.breakdowns import (
    TOTAL,
    counted,
    groupings,
    key_columns,
    keys,
    parts,
    quoted,
    rolled_up,
)
from tourviews.analytics.exact import EXACT_ROLLUPS
from tourviews.analytics.parts import raw_from
from tourviews.analytics.sketch import sketch_of
from tourviews.analytics.visits import OF_DAY
from tourviews.storage.database import mark_changed, one, read_meta, transaction, write_meta

# A day is complete this long after its midnight: beacons in flight, a clock a little
# ahead, commits queued at midnight all land before it is rolled up.
ROLLUP_MARGIN = timedelta(minutes=10)


def visitor_lists() -> str:
    """The day's visitors of each tour, part and key: the rollups' rows (and sketches)."""
    hour = ("hour", "strftime(ts, '%H')", "view")
    return f"""
WITH hits AS MATERIALIZED (
    SELECT tour, ts, kind, visitor::VARCHAR AS visitor, {key_columns(rolled_up())}
    FROM events WHERE ts >= $start AND ts < $end
)
{groupings([TOTAL, hour, *parts(rolled_up())], by="tour", ids=True)}
"""


# The day's views per 15-minute bucket: the views of any time zone's days beyond raw
# retention. No sketch of their visitors: one that fine would tell when a visitor came.
QUARTER_VIEWS = """
SELECT tour, time_bucket(INTERVAL 15 MINUTE, ts), 'total', '', count(*), NULL::BLOB
FROM events WHERE ts >= $start AND ts < $end AND kind = 'view'
GROUP BY ALL
"""


def day_recency() -> str:
    """The recency rows of a day: the raw events of the day's visitors up to its end, so
    that each of them finds, per part and key, the latest earlier day they were seen with it.

    Every breakdown counting events has them, kept in the rollups or not: they live as
    long as the raw events they are made from.
    """
    return f"""
INSERT INTO recency
SELECT tour, $start::DATE, k.part, k.key, previous, count(*), sum(views) FROM (
    SELECT tour, k, visitor, max(ts::DATE) FILTER (ts < $start) AS previous,
        count(*) FILTER (ts >= $start) AS views
    FROM (
        SELECT tour, ts, visitor, unnest({keys()}) AS k FROM events
        WHERE ts < $end AND kind IN ('view', 'scene') AND visitor IN (
            SELECT visitor FROM events WHERE ts >= $start AND ts < $end
        )
    )
    GROUP BY ALL
    HAVING max(ts) >= $start
)
GROUP BY ALL
ORDER BY 3, 1
"""  # fmt: skip


def pending_days() -> str:
    """The days before ``$today`` to roll up: not rolled up yet, or whose aggregates do not
    hold all of their raw events.

    A day's recency rows count each of its views once in the total and in each breakdown
    of views, and each scene event once in each breakdown of scenes; its quarters count
    each view once. Events committed after the rollup break that, and so does a
    breakdown registered since: it has no rows yet, and the day is rolled up again while
    its raw events are kept.
    """
    counts = [TOTAL, *parts(counted())]
    made = ", ".join(f"sum(views) FILTER (dimension = '{part}') AS made_{part}"
                     for part, _, _ in counts)  # fmt: skip
    short = " OR ".join(f"coalesce(made_{part}, 0) <> {kind}_events" for part, _, kind in counts)
    return f"""
SELECT day FROM (
    SELECT ts::DATE AS day, count(*) FILTER (kind = 'view') AS view_events,
        count(*) FILTER (kind = 'scene') AS scene_events
    FROM events WHERE ts < $today GROUP BY 1
)
LEFT JOIN (
    SELECT day, {made} FROM recency
    WHERE dimension IN ({quoted(part for part, _, _ in counts)}) GROUP BY 1
) USING (day)
LEFT JOIN (
    SELECT start::DATE AS day, sum(amount) AS quartered FROM quarters
    WHERE dimension = 'total' AND start < $today GROUP BY 1
) USING (day)
LEFT JOIN (SELECT day, true AS rolled FROM rolled_days) USING (day)
WHERE {short} OR coalesce(quartered, 0) <> view_events OR rolled IS NULL
ORDER BY day
"""


VISITS_BY = {"began": "visits", "began_engaged": "engaged"}  # quarters' dimension of a row
QUARTERS = pa.schema(
    [
        ("tour", pa.string()),
        ("start", pa.timestamp("us")),
        ("dimension", pa.string()),
        ("key", pa.string()),
        ("amount", pa.int64()),
        ("sketch", pa.binary()),
    ]
)

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


def replace_day(cursor: duckdb.DuckDBPyConnection, day: date) -> None:
    """(Re)compute the aggregates of ``day`` from its raw events, in the caller's transaction."""
    start = datetime.combine(day, time())
    bounds = {"start": start, "end": start + timedelta(days=1)}
    groups = cursor.execute(visitor_lists(), bounds).fetchall()
    tours, parts, keys_, views, lists = list(zip(*groups, strict=True)) or [()] * 5
    table = pa.table(
        [tours, [day] * len(tours), parts, keys_, views, [len(ids) for ids in lists],
         [None if part == "hour" else sketch_of(ids)
          for part, ids in zip(parts, lists, strict=True)]],
        schema=ROLLUPS,
    )  # fmt: skip
    for made in ("rollups", "recency", "visitor_days"):
        cursor.execute(f"DELETE FROM {made} WHERE day = ?", [day])
    cursor.execute("DELETE FROM quarters WHERE start >= $start AND start < $end", bounds)
    cursor.register("day_rollups", table)
    cursor.execute("INSERT INTO rollups SELECT * FROM day_rollups")
    cursor.unregister("day_rollups")
    quarters: list[tuple[str, datetime, str, str, int, bytes | None]] = [
        (tour, quarter, part, key, amount, None)
        for tour, quarter, part, key, amount, _ in cursor.execute(QUARTER_VIEWS, bounds).fetchall()
    ]
    visit_rollups = []
    for tour, _, part, key, amount, ids in cursor.execute(OF_DAY, bounds).fetchall():
        if part in ("began", "began_engaged"):  # the visits of a bucket, and their seconds
            quarter = datetime.fromisoformat(key)
            quarters.append((tour, quarter, VISITS_BY[part], "", amount, None))
        else:
            sketch = None if ids is None else sketch_of(ids)
            visit_rollups.append((tour, day, part, key, amount, len(ids or ()), sketch))
    if visit_rollups:
        columns = list(zip(*visit_rollups, strict=True))
        cursor.register("day_visits", pa.table(columns, schema=ROLLUPS))
        cursor.execute("INSERT INTO rollups SELECT * FROM day_visits")
        cursor.unregister("day_visits")
    if quarters:
        columns = list(zip(*quarters, strict=True))
        cursor.register("day_quarters", pa.table(columns, schema=QUARTERS))
        cursor.execute("INSERT INTO quarters SELECT * FROM day_quarters")
        cursor.unregister("day_quarters")
    cursor.execute(day_recency(), bounds)
    cursor.execute(
        "INSERT INTO visitor_days SELECT DISTINCT tour, ts::DATE, visitor FROM events "
        "WHERE kind = 'view' AND ts >= $start AND ts < $end",
        bounds,
    )
    cursor.execute("INSERT OR IGNORE INTO rolled_days VALUES (?)", [day])
    mark_changed(cursor)


def roll_up_day(cursor: duckdb.DuckDBPyConnection, day: date) -> None:
    """(Re)compute the aggregates of ``day`` from its raw events, in one transaction."""
    with transaction(cursor):
        replace_day(cursor, day)


def complete_before(now: datetime) -> date:
    """The first day not yet complete at ``now``: a day ends ``ROLLUP_MARGIN`` after midnight."""
    return (now - ROLLUP_MARGIN).date()


def roll_up_completed(cursor: duckdb.DuckDBPyConnection, today: date) -> list[date]:
    """Roll up every day before ``today`` whose raw events its aggregates do not all hold.

    That is a day not rolled up yet, one that got events after its rollup (committed
    just after midnight, or simulated by ``tourviews demo``), and, on a data directory
    from before recency rows or before a breakdown was registered, every day whose raw
    events are kept (``pending_days``). A day from ``today``
    on that was rolled up (the wall clock ran ahead, then was set back) is un-rolled:
    its raw events answer again, late ones included, until it is complete.
    """
    # Only days whose raw events are kept: before raw_from the rollup is all there is.
    since = max(today, raw_from(cursor))
    if one(cursor, "SELECT count(*) FROM rolled_days WHERE day >= ?", [since]) != (0,):
        with transaction(cursor):
            for made in ("rollups", "recency", "visitor_days", "rolled_days"):
                cursor.execute(f"DELETE FROM {made} WHERE day >= ?", [since])
            cursor.execute(
                "DELETE FROM quarters WHERE start >= ?", [datetime.combine(since, time())]
            )
            mark_changed(cursor)
    pending = cursor.execute(pending_days(), {"today": datetime.combine(today, time())}).fetchall()
    days = [day for (day,) in pending]
    for day in days:
        roll_up_day(cursor, day)
    if read_meta(cursor, EXACT_ROLLUPS) is None:
        with transaction(cursor):  # reads until now took another path: not to be kept
            write_meta(cursor, EXACT_ROLLUPS, "complete")
            mark_changed(cursor)
    return days
