"""Visits: the stored events cut into visits, and what owners read of them.

A visit is a counted view and the scene, engage and action events of the same
visitor and tour that follow it, until 30 minutes pass without one (the rule
``tourviews.ingest.rules.visits`` applies as beacons arrive), or until the UTC midnight after it
began. A visit counts in the period its view falls in, with its events up to the
period's end. Events whose visit began before the period (or that follow a pause
without a view) belong to no visit of it.

Every figure is a sum of rows (dimension, key, amount): histograms for the median
engaged time and the scenes per visit, counts for the rest. A visit ends by UTC
midnight, so a UTC day's rows are whole: the daily rollups keep them (``rollups``,
with the views), and the visits and engaged seconds of each 15-minute bucket too
(``quarters``), for the series and for the days of other time zones.
"""

from __future__ import annotations

import bisect
import itertools
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import duckdb

from tourviews.analytics.kept import rows as kept_rows
from tourviews.analytics.parts import Cell
from tourviews.analytics.period import Period
from tourviews.storage.visit import IDLE_SECONDS

UNIX_EPOCH = datetime(1970, 1, 1)  # naive UTC, as the events' ts
Rows = list[tuple[str, str, int, Any]]  # (dimension, key, amount, visitor IDs or a sketch)

# The events of a span cut into runs: a run of a visitor's events begins with a view,
# or after a pause; {where} selects the span's events. The visits are the runs that
# begin with a view (``VISITS``, ``tourviews.analytics.funnel``).
RUNS = """
WITH ev AS MATERIALIZED (
    SELECT tour, visitor, ts::DATE AS day, ts, kind, scene, seconds, action,
        coalesce(kind = 'view' OR ts - lag(ts) OVER w > INTERVAL {idle} SECOND, kind = 'view')
            AS starts
    FROM events WHERE {where}
    WINDOW w AS (PARTITION BY tour, visitor, ts::DATE ORDER BY ts, kind <> 'view', scene)
),
runs AS MATERIALIZED (
    SELECT *, sum(starts::INTEGER) OVER (
        PARTITION BY tour, visitor, day ORDER BY ts, kind <> 'view', scene ROWS UNBOUNDED PRECEDING
    ) AS run
    FROM ev
),"""
# The visits' figures, from ``runs`` (the events of each visit under its ``run``, > 0),
# as rows. {bucket} is what the rows are grouped by besides the tour (a quarter of the
# visit's start, or nothing).
FIGURES = """
visits AS MATERIALIZED (
    SELECT tour, visitor, day, run, {bucket} AS bucket, min(ts) AS began,
        -- ordered aggregates cost a sort each: the list is sorted once, by its first fields
        coalesce([step.scene FOR step IN list_sort(list({{'ts': ts, 'later': kind <> 'view',
            'scene': scene}}) FILTER (kind IN ('view', 'scene') AND scene IS NOT NULL))], [])
            AS path,
        coalesce(sum(seconds), 0) AS engaged,
        -- the goals it reached: every scene entered and action taken
        coalesce(list_distinct(list({goal}) FILTER ({goal_events})), []) AS reached
    FROM runs
    WHERE run > 0  -- run 0: the span (or the UTC day) began inside it
    GROUP BY tour, visitor, day, run
    HAVING arg_min(kind, {{'ts': ts, 'later': kind <> 'view'}}) = 'view'
),
inside AS MATERIALIZED (
    SELECT runs.*, visits.bucket FROM runs JOIN visits USING (tour, visitor, day, run)
    WHERE runs.kind IN ('engage', 'action')
)
SELECT tour, bucket, 'visits', '', count(*), NULL FROM visits GROUP BY ALL
UNION ALL
SELECT tour, bucket, 'engaged', engaged::VARCHAR, count(*), NULL FROM visits GROUP BY ALL
UNION ALL
SELECT tour, bucket, 'scenes', len(list_distinct(path))::VARCHAR, count(*), NULL
FROM visits GROUP BY ALL
UNION ALL
SELECT tour, bucket, 'entry', path[1], count(*), NULL FROM visits WHERE len(path) > 0
GROUP BY ALL
UNION ALL
SELECT tour, bucket, 'exit', path[-1], count(*), NULL FROM visits WHERE len(path) > 0
GROUP BY ALL
UNION ALL
SELECT tour, bucket, 'transition', move, count(*), NULL FROM (
    SELECT tour, bucket, unnest(list_distinct(
        [path[i] || '>' || path[i + 1] FOR i IN range(1, len(path)) IF path[i] <> path[i + 1]]
    )) AS move FROM visits
) GROUP BY ALL
UNION ALL
SELECT tour, bucket, 'action', action, count(*), list(DISTINCT visitor::VARCHAR)
FROM inside WHERE kind = 'action' GROUP BY ALL
UNION ALL
SELECT tour, bucket, 'scene_engaged', scene, sum(seconds), NULL
FROM inside WHERE kind = 'engage' AND scene IS NOT NULL GROUP BY ALL
UNION ALL
SELECT tour, bucket, 'reached', goal, count(*), NULL FROM (
    SELECT tour, bucket, unnest(reached) AS goal FROM visits
) GROUP BY ALL
{series}"""
# For the series: the visits and their engaged seconds by the quarter they began in.
# (In ``quarters`` the visits and engaged rows of each bucket say as much.)
SERIES = """
UNION ALL
SELECT tour, bucket, 'began', strftime(time_bucket(INTERVAL 15 MINUTE, began), '%Y-%m-%dT%H:%M'),
    count(*), NULL
FROM visits GROUP BY ALL
UNION ALL
SELECT tour, bucket, 'began_engaged',
    strftime(time_bucket(INTERVAL 15 MINUTE, began), '%Y-%m-%dT%H:%M'), sum(engaged), NULL
FROM visits GROUP BY ALL
"""


# An event as a goal or a funnel's step (``scene:NAME``, ``action:NAME``), and the
# events that are one: a view or scene event with its scene, an action.
GOAL = "CASE kind WHEN 'action' THEN 'action:' || action ELSE 'scene:' || scene END"
GOAL_EVENTS = (
    "kind IN ('view', 'scene') AND scene IS NOT NULL OR kind = 'action' AND action IS NOT NULL"
)
VISITS = RUNS + FIGURES


def visit_rows(where: str, bucket: str = "NULL", series: str = "") -> str:
    """The query of the visit rows (tour, bucket, dimension, key, amount, visitor IDs)."""
    return VISITS.format(
        where=where, bucket=bucket, idle=IDLE_SECONDS, series=series, goal=GOAL,
        goal_events=GOAL_EVENTS,
    )  # fmt: skip


def rows_of_runs(runs: str, series: str = "") -> str:
    """The visit rows of events cut already: ``runs`` is a relation of them with the
    columns tour, visitor, day (UTC), run (> 0, one number per visit), ts, kind, scene,
    seconds and action, the first event of each run its view."""
    figures = FIGURES.format(bucket="NULL", series=series, goal=GOAL, goal_events=GOAL_EVENTS)
    return f"WITH runs AS MATERIALIZED {runs}," + figures


OF_TOUR = visit_rows("tour = $tour AND ts >= $start AND ts < $end", series=SERIES)
OF_DAY = visit_rows("ts >= $start AND ts < $end", series=SERIES)  # every tour's, for rollups
# A short span's events of one tour, in the order the visit query reads them (events
# of one visitor in the same microsecond by scene, so that both cuts agree): DuckDB
# takes about 15 ms to run that query whatever its rows, and a day of one tour's
# events is cut faster in Python (``cut``) than that.
EVENTS = (
    "SELECT visitor::VARCHAR, epoch_us(ts), kind, scene, seconds, action FROM events "
    "WHERE tour = $tour AND ts >= $start AND ts < $end "
    "ORDER BY visitor, ts, kind <> 'view', scene NULLS LAST"
)
SHORT_SPAN = timedelta(days=2)  # raw spans up to this long are cut in Python
IDLE_US, QUARTER_US, DAY_US = IDLE_SECONDS * 10**6, 15 * 60 * 10**6, 86_400 * 10**6
# The rollup rows of visits (in ``rollups``, the amount as views), summed over the
# days: one row per key, but the actions' rows come per day, with their sketches.
# {dimensions}: the parts wanted; {days}: the series by day, or nothing.
ROLLED = """
SELECT dimension, key, sum(views)::BIGINT, NULL, NULL FROM rollups
WHERE tour = $tour AND day BETWEEN $first AND $last AND dimension IN ({dimensions})
GROUP BY ALL
UNION ALL
SELECT dimension, key, views, visitors, sketch FROM rollups
WHERE tour = $tour AND day BETWEEN $first AND $last AND dimension = 'action' AND $actions
{days}"""
ROLLED_DAYS = """
UNION ALL
SELECT CASE dimension WHEN 'visits' THEN 'began' ELSE 'began_engaged' END,
    strftime(day, '%Y-%m-%dT00:00'), sum(views * CASE dimension WHEN 'visits' THEN 1
    ELSE key::BIGINT END)::BIGINT, NULL, NULL
FROM rollups
WHERE tour = $tour AND day BETWEEN $first AND $last AND dimension IN ('visits', 'engaged')
GROUP BY ALL
"""
# the parts the totals are made of (with the goals: the visits that reached each)
TOTALS = ("visits", "engaged", "scenes", "reached")
PARTS = (*TOTALS, "entry", "exit", "transition", "scene_engaged")  # and the rest, but actions
QUARTERS = (
    "SELECT start, dimension, amount FROM quarters WHERE tour = $tour AND start >= $start "
    "AND start < $end AND dimension IN ('visits', 'engaged')"
)


@dataclass
class VisitFigures:
    """The visit rows of a period, summed: every figure of the stats document's visits."""

    visits: int = 0
    engaged: int = 0
    amounts: dict[tuple[str, str], int] = field(default_factory=lambda: defaultdict(int))
    actions: dict[str, Cell] = field(default_factory=lambda: defaultdict(Cell))
    # quarter the visits began in (naive UTC) -> [visits, engaged seconds]
    quarters: dict[datetime, list[int]] = field(default_factory=lambda: defaultdict(lambda: [0, 0]))
    # False: the breakdowns and histograms cover whole UTC days around the period (a zone
    # other than UTC, beyond raw retention)
    exact: bool = True

    def add(self, dimension: str, key: str, amount: int, visitors: Any, sums: bool = True) -> None:
        """One row, from raw events (``visitors``: their IDs) or rollups ((count, sketch)).

        ``sums``: whether its visits and engaged seconds count (False when the quarters
        give them).
        """
        if dimension in ("began", "began_engaged"):
            self.quarters[datetime.fromisoformat(key)][dimension == "began_engaged"] += amount
            return
        if dimension == "visits":
            self.visits += amount if sums else 0
            return
        if dimension == "engaged" and sums:
            self.engaged += int(key) * amount
        self.amounts[dimension, key] += amount
        if dimension == "action":
            cell = self.actions[key]
            if isinstance(visitors, tuple):  # a day's rollup: its visitors, and their sketch
                count, sketch = visitors
                cell.add(amount, count, sketch, [])
            else:
                cell.add(amount, len(visitors), None, list(visitors))

    def _histogram(self, dimension: str) -> list[tuple[int, int]]:
        return sorted(
            (int(key), amount) for (part, key), amount in self.amounts.items() if part == dimension
        )

    def totals(self) -> dict[str, Any]:
        scenes = self._histogram("scenes")
        counted = sum(n for _, n in scenes)
        return {
            "visits": self.visits,
            "engaged_seconds": self.engaged,
            "engaged_seconds_per_visit": median(self._histogram("engaged")),
            "scenes_per_visit": round(sum(k * n for k, n in scenes) / counted, 2) if counted else 0,
            "bounce_rate": round(sum(n for k, n in scenes if k <= 1) / counted, 4)
            if counted
            else 0,
        }

    def ranked(self, dimension: str, limit: int) -> list[tuple[str, int]]:
        rows = [(key, n) for (part, key), n in self.amounts.items() if part == dimension]
        return sorted(rows, key=lambda row: (-row[1], row[0]))[:limit]

    def breakdowns(self, limit: int) -> dict[str, list[dict[str, Any]]]:
        actions = sorted(self.actions.items(), key=lambda kv: (-kv[1].views, kv[0]))[:limit]
        return {
            "entry_scene": [{"key": k, "visits": n} for k, n in self.ranked("entry", limit)],
            "exit_scene": [{"key": k, "visits": n} for k, n in self.ranked("exit", limit)],
            "action": [
                {"key": key, "count": cell.views, "visitors": cell.distinct()}
                for key, cell in actions
            ],
        }

    def transitions(self, limit: int) -> list[dict[str, Any]]:
        return [
            {"from": move.split(">")[0], "to": move.split(">")[1], "visits": n}
            for move, n in self.ranked("transition", limit)
        ]

    def series(self, starts: list[datetime]) -> list[tuple[int, int]]:
        """(visits, engaged seconds) of the visits that began in each interval, given the
        intervals' starts (naive UTC, in order; the last ends where the figures do)."""
        sums = [[0, 0] for _ in starts]
        for quarter, (visits, engaged) in self.quarters.items():
            at = bisect.bisect_right(starts, quarter) - 1
            if at >= 0:
                sums[at][0] += visits
                sums[at][1] += engaged
        return [(visits, engaged) for visits, engaged in sums]

    def goals(self, goals: Iterable[str]) -> list[dict[str, Any]]:
        """Each goal, with the visits that reached it and their share of the visits.

        Beyond raw retention in a zone other than UTC, the visits that reached a goal are
        those of the whole UTC days around the period (as the breakdowns): the share is
        then at most 1.
        """
        return [
            {"goal": goal, "visits": reached,
             "rate": round(min(1.0, reached / self.visits), 4) if self.visits else 0}
            for goal in goals
            for reached in [self.amounts.get(("reached", goal), 0)]
        ]  # fmt: skip

    def by_key(self, dimension: str) -> dict[str, int]:
        """The amounts of one part of the visit rows by key (``scene_engaged``: seconds)."""
        return {key: n for (part, key), n in self.amounts.items() if part == dimension}


def median(histogram: list[tuple[int, int]]) -> float:
    """The median of a sorted histogram of (value, how many)."""
    total = sum(n for _, n in histogram)
    if total == 0:
        return 0.0

    def at(position: int) -> int:
        seen = 0
        for value, n in histogram:
            seen += n
            if seen > position:
                return value
        raise AssertionError("position past the histogram")

    return (at((total - 1) // 2) + at(total // 2)) / 2


def cut(rows: Iterable[tuple[str, int, str, str | None, int | None, str | None]]) -> Rows:
    """The visit rows of one tour's events, cut as the visit query cuts them.

    ``rows``: (visitor, microseconds since the epoch, kind, scene, seconds, action) in
    the order of ``EVENTS``. Gives (dimension, key, amount, visitor IDs) rows, as the
    query's columns after the tour and the bucket.
    """
    amounts: dict[tuple[str, str], int] = defaultdict(int)
    began: dict[int, list[int]] = defaultdict(lambda: [0, 0])  # quarter -> visits, engaged
    actors: dict[str, set[str]] = defaultdict(set)
    path: list[str] = []
    reached: set[str] = set()  # the goals of the current visit: scenes entered, actions taken
    engaged = start = last = midnight = 0
    counted = False  # the current run is a visit (it began with a view)
    who = ""

    def close() -> None:
        if not counted:
            return
        amounts["visits", ""] += 1
        amounts["engaged", str(engaged)] += 1
        amounts["scenes", str(len(set(path)))] += 1
        quarter = began[start // QUARTER_US]
        quarter[0] += 1
        quarter[1] += engaged
        if path:
            amounts["entry", path[0]] += 1
            amounts["exit", path[-1]] += 1
        for move in {f"{a}>{b}" for a, b in itertools.pairwise(path) if a != b}:
            amounts["transition", move] += 1
        for goal in reached:
            amounts["reached", goal] += 1

    for visitor, at, kind, scene, seconds, action in rows:
        if visitor != who or at >= midnight:  # visits end at UTC midnight
            close()
            counted = False  # a visitor's day that begins without a view: no visit yet
            who, midnight = visitor, (at // DAY_US + 1) * DAY_US
            if kind == "view":
                counted, start, path, engaged, reached = True, at, [], 0, set()
        elif kind == "view" or at - last > IDLE_US:
            close()
            counted, start, path, engaged, reached = kind == "view", at, [], 0, set()
        last = at
        if not counted:
            continue
        if kind in ("view", "scene") and scene is not None:
            path.append(scene)
            reached.add(f"scene:{scene}")
        elif kind == "engage":
            engaged += seconds or 0
            if scene is not None:
                amounts["scene_engaged", scene] += seconds or 0
        elif kind == "action" and action is not None:
            amounts["action", action] += 1
            actors[action].add(visitor)
            reached.add(f"action:{action}")
    close()
    rows_: Rows = [
        (dimension, key, amount, sorted(actors[key]) if dimension == "action" else None)
        for (dimension, key), amount in amounts.items()
    ]
    for quarter, (visits, seconds_) in began.items():
        key = (UNIX_EPOCH + timedelta(microseconds=quarter * QUARTER_US)).strftime("%Y-%m-%dT%H:%M")
        rows_ += [("began", key, visits, None), ("began_engaged", key, seconds_, None)]
    return rows_


def visit_figures(
    cursor: duckdb.DuckDBPyConnection,
    tour: str,
    period: Period,
    rolled: date | None,
    totals_only: bool = False,
) -> VisitFigures:
    """The visit figures of ``tour`` over ``period`` (``totals_only``: what the totals need).

    ``rolled``: the day after the last UTC day whose rollups answer (their raw events
    may be gone); raw events answer from there on. A period of UTC days reads the
    rollups of its own days. Another zone's period begins and ends inside UTC days: the
    quarters give its visits, engaged seconds and series exactly, and the rollups of
    the UTC days it touches give the rest (``exact`` is then False).
    """
    figures = VisitFigures()
    start, end = (
        moment.astimezone(UTC).replace(tzinfo=None) for moment in (period.start, period.end)
    )
    raw_from = start if rolled is None else max(start, datetime.combine(rolled, time()))
    raw_from = min(raw_from, end)  # a period that ends before the rollups do
    if rolled is not None and start < raw_from:
        last = (raw_from - timedelta(microseconds=1)).date()
        whole = period.in_utc
        # A series by UTC day has its visits in the rollups; by hour, or in another zone,
        # in the quarters.
        by_quarter = not whole or period.interval == "hour"
        query = ROLLED.format(
            dimensions=", ".join(f"'{part}'" for part in (TOTALS if totals_only else PARTS)),
            days="" if by_quarter or totals_only else ROLLED_DAYS,
        )
        parameters = {"tour": tour, "first": start.date(), "last": last, "actions": not totals_only}
        for dimension, key, amount, *visitors in kept_rows(cursor, query, parameters, last):
            figures.add(dimension, key, amount, tuple(visitors), sums=whole)
        if by_quarter and not (whole and totals_only):
            quarters = {"tour": tour, "start": start, "end": raw_from}
            for quarter, dimension, amount in kept_rows(cursor, QUARTERS, quarters, last):
                figures.quarters[quarter][dimension == "engaged"] += amount
                if not whole:
                    if dimension == "visits":
                        figures.visits += amount
                    else:
                        figures.engaged += amount
        figures.exact = whole
    if raw_from < end:
        parameters = {"tour": tour, "start": raw_from, "end": end}
        if end - raw_from <= SHORT_SPAN:
            rows = cut(cursor.execute(EVENTS, parameters).fetchall())
        else:
            rows = [row[2:] for row in cursor.execute(OF_TOUR, parameters).fetchall()]
        for dimension, key, amount, ids in rows:
            figures.add(dimension, key, amount, ids or [])
    return figures
