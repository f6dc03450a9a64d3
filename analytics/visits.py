"""Visits: the stored events cut into visits, and what owners read of them.

A visit is a counted view and the scene, engage and action events of the same
visitor and tour that follow it, until 30 minutes pass without one (the rule
``ingest.visits`` applies as beacons arrive). Asked about a span of time, the
events inside it are cut into visits; a visit counts in the span its view falls
in, with its events up to the span's end. Events whose visit began before the span
(or that follow a 30-minute gap without a view) belong to no visit of it.

Every figure is a sum of rows (dimension, key, amount): histograms for the median
engaged time and the scenes per visit, counts for the rest. Rows of raw events and
rows kept in ``quarters`` (one per 15-minute UTC bucket the visits began in, made
when a day is rolled up) therefore add up, for any span made of whole buckets.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import duckdb

from analytics.parts import Cell
from storage.visit import IDLE_SECONDS

# The events of a span cut into visits. {where} selects the span's events; {bucket}
# is what the rows are grouped by besides the tour (a quarter of the visit's start,
# or nothing).
VISITS = """
WITH ev AS MATERIALIZED (
    SELECT tour, visitor, ts, kind, scene, seconds, action,
        coalesce(kind = 'view' OR ts - lag(ts) OVER w > INTERVAL {idle} SECOND, kind = 'view')
            AS starts
    FROM events WHERE {where}
    WINDOW w AS (PARTITION BY tour, visitor ORDER BY ts, kind <> 'view')
),
runs AS MATERIALIZED (
    SELECT *, sum(starts::INTEGER) OVER (
        PARTITION BY tour, visitor ORDER BY ts, kind <> 'view' ROWS UNBOUNDED PRECEDING
    ) AS run
    FROM ev
),
visits AS MATERIALIZED (
    SELECT tour, visitor, run, {bucket} AS bucket,
        coalesce(list(scene ORDER BY ts, kind <> 'view')
            FILTER (kind IN ('view', 'scene') AND scene IS NOT NULL), []) AS path,
        coalesce(sum(seconds), 0) AS engaged
    FROM runs
    WHERE run > 0  -- run 0: the span began inside it
    GROUP BY tour, visitor, run
    HAVING first(kind ORDER BY ts, kind <> 'view') = 'view'
),
inside AS MATERIALIZED (
    SELECT runs.*, visits.bucket FROM runs JOIN visits USING (tour, visitor, run)
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
"""


def visit_rows(where: str, bucket: str = "NULL") -> str:
    """The query of the visit rows (tour, bucket, dimension, key, amount, visitor IDs)."""
    return VISITS.format(where=where, bucket=bucket, idle=IDLE_SECONDS)


OF_TOUR = visit_rows("tour = $tour AND ts >= $start AND ts < $end")
BY_QUARTER = visit_rows("ts >= $start AND ts < $end", "time_bucket(INTERVAL 15 MINUTE, min(ts))")


@dataclass
class VisitFigures:
    """The visit rows of a span, summed: every figure of the stats document's visits."""

    amounts: dict[tuple[str, str], int] = field(default_factory=lambda: defaultdict(int))
    actions: dict[str, Cell] = field(default_factory=lambda: defaultdict(Cell))

    def add(self, dimension: str, key: str, amount: int, visitors: Any) -> None:
        """One row, from raw events (``visitors``: their IDs) or from quarters (a sketch)."""
        self.amounts[dimension, key] += amount
        if dimension == "action":
            cell = self.actions[key]
            if isinstance(visitors, bytes):
                cell.add(amount, 0, visitors, [])
            else:
                cell.add(amount, len(visitors), None, list(visitors))

    def _histogram(self, dimension: str) -> list[tuple[int, int]]:
        return sorted(
            (int(key), amount) for (part, key), amount in self.amounts.items() if part == dimension
        )

    def totals(self) -> dict[str, Any]:
        visits = self.amounts.get(("visits", ""), 0)
        engaged = self._histogram("engaged")
        scenes = self._histogram("scenes")
        return {
            "visits": visits,
            "engaged_seconds": sum(seconds * n for seconds, n in engaged),
            "engaged_seconds_per_visit": median(engaged),
            "scenes_per_visit": round(sum(k * n for k, n in scenes) / visits, 2) if visits else 0,
            "bounce_rate": round(sum(n for k, n in scenes if k <= 1) / visits, 4) if visits else 0,
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

    def engaged_by_scene(self) -> dict[str, int]:
        return {key: n for (part, key), n in self.amounts.items() if part == "scene_engaged"}


def median(histogram: list[tuple[int, int]]) -> float:
    """The median of a sorted histogram of (value, how many)."""
    total = sum(n for _, n in histogram)
    if total == 0:
        return 0

    def at(position: int) -> int:
        seen = 0
        for value, n in histogram:
            seen += n
            if seen > position:
                return value
        raise AssertionError("position past the histogram")

    return (at((total - 1) // 2) + at(total // 2)) / 2


def visit_figures(
    cursor: duckdb.DuckDBPyConnection, tour: str, start: datetime, end: datetime, horizon: datetime
) -> VisitFigures:
    """The visit figures of ``tour`` from ``start`` to ``end`` (naive UTC).

    Raw events answer from ``horizon`` (the first moment whose raw events are all
    kept) on; quarters before it.
    """
    figures = VisitFigures()
    if start < horizon:
        rows = cursor.execute(
            "SELECT dimension, key, amount, sketch FROM quarters WHERE tour = $tour AND "
            "dimension IN ('visits', 'engaged', 'scenes', 'entry', 'exit', 'transition', "
            "'action', 'scene_engaged') AND start >= $start AND start < $end",
            {"tour": tour, "start": start, "end": min(end, horizon)},
        ).fetchall()
        for dimension, key, amount, sketch in rows:
            figures.add(dimension, key, amount, sketch)
    if end > horizon:
        parameters = {"tour": tour, "start": max(start, horizon), "end": end}
        for _, _, dimension, key, amount, ids in cursor.execute(OF_TOUR, parameters).fetchall():
            figures.add(dimension, key, amount, ids or [])
    return figures
