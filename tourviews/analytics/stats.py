"""The stats document of one tour: totals, a zero-filled series, breakdowns, visits.

``views`` are counted ``view`` events, ``visitors`` are distinct visitor IDs among
them (over the whole range, never a sum of daily counts), and the scene breakdown
counts ``scene`` events per scene. A period of UTC days within raw retention is
answered exactly (``tourviews.analytics.exact``). One reaching past it merges the visitor IDs
of its raw events with the sketches of the rollups of its older days. A period in
another time zone is answered by ``tourviews.analytics.zones``, and the visits, in any zone,
by ``tourviews.analytics.visits``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, TypeVar

import duckdb
import polars as pl

from tourviews.analytics.breakdowns import (
    TOTAL,
    Breakdown,
    counted,
    groupings,
    key_columns,
    parts,
    quoted,
    rolled_up,
    shown,
    with_geoip,
)
from tourviews.analytics.exact import exact_stats, exact_totals, fresh_from
from tourviews.analytics.filters import Filters, answerable, filtered_figures
from tourviews.analytics.kept import kept, reading
from tourviews.analytics.parts import EPOCH, Cell, Cells, Series, day_key
from tourviews.analytics.parts import (
    raw_from as raw_from,  # tourviews.analytics.alerts reads it from here
)
from tourviews.analytics.period import Period
from tourviews.analytics.visits import VisitFigures, visit_figures
from tourviews.analytics.zones import zoned_stats
from tourviews.storage.database import one

SERIES = ("series", "strftime(date_trunc($interval, ts), '%Y-%m-%dT%H:%M:%SZ')", "view")


def hits_query(ids: bool) -> str:
    """One scan of the tour's raw events in the period; each part of the document is one
    grouping of it. ``ids``: list the visitor IDs, to be merged with sketches."""
    hits = f"""
WITH hits AS MATERIALIZED (
    SELECT ts, kind, visitor::VARCHAR AS visitor, {key_columns(counted())}
    FROM events WHERE tour = $tour AND ts >= $start AND ts < $end
)
"""
    grouped = [TOTAL, SERIES, *parts(counted())]
    return hits + groupings(grouped, ids=ids)


T = TypeVar("T")
BREAKDOWN_LIMIT = 100  # rows per breakdown unless asked otherwise
MAX_BREAKDOWN_LIMIT = 1_000


def tour_stats(
    cursor: duckdb.DuckDBPyConnection,
    tour: str,
    period: Period,
    limit: int = BREAKDOWN_LIMIT,
    goals: tuple[str, ...] = (),
    filters: Filters = (),
) -> dict[str, Any]:
    """The contract's stats document for ``tour`` over ``period``; ``limit`` rows a breakdown.

    Within raw retention every number is exact. Days whose raw events were purged
    come from the rollups: per day and hour still exact, but over several days the
    visitors are a union of sketches, and ``visitors_exact`` says so. ``goals``: the
    tour's, each with the visits that reached it (here and in ``previous``). With
    ``filters``, the figures of the visits they pick (``tourviews.analytics.filters``).
    """
    if filters:
        return _filtered_stats(cursor, tour, period, limit, filters, goals)
    with reading(cursor):
        series, cells = _views(cursor, tour, period)
        visits = visit_figures(cursor, tour, period, _rolled(cursor, period))
        document = _document(tour, period, series, cells, visits, limit, with_geoip(cursor))
        document["goals"] = visits.goals(goals)
        previous = period.before()
        document["previous"] = {
            "from": previous.first.isoformat(),
            "to": previous.last.isoformat(),
            **_past_totals(cursor, tour, previous, goals),
        }
    return document


def _past_totals(
    cursor: duckdb.DuckDBPyConnection, tour: str, period: Period, goals: tuple[str, ...]
) -> dict[str, Any]:
    """``_totals``, kept while the figures of the period's days cannot change (the
    dashboard asks for the period before its own again and again)."""
    return dict(_kept_for(cursor, "totals", tour, period, goals, _totals))


def goal_rates(
    cursor: duckdb.DuckDBPyConnection, tour: str, period: Period, goals: tuple[str, ...]
) -> list[dict[str, Any]]:
    """The ``goals`` of ``tour``'s stats document over ``period``, kept as the totals of
    the period before are, while its days cannot change."""
    return list(_kept_for(cursor, "goals", tour, period, goals, _goals)) if goals else []


def _kept_for(
    cursor: duckdb.DuckDBPyConnection,
    name: str,
    tour: str,
    period: Period,
    goals: tuple[str, ...],
    compute: Callable[[duckdb.DuckDBPyConnection, str, Period, tuple[str, ...]], T],
) -> T:
    """``compute``'s figures of ``tour`` over ``period``, kept under ``name`` while the
    period's days cannot change."""
    last = (period.end.astimezone(UTC) - timedelta(microseconds=1)).date()
    key = (name, tour, period.first, period.last, period.zone.key, goals)
    return kept(cursor, key, last, lambda: compute(cursor, tour, period, goals))


def _goals(
    cursor: duckdb.DuckDBPyConnection, tour: str, period: Period, goals: tuple[str, ...]
) -> list[dict[str, Any]]:
    visits = visit_figures(cursor, tour, period, _rolled(cursor, period), totals_only=True)
    return visits.goals(goals)


def _rolled(cursor: duckdb.DuckDBPyConnection, period: Period) -> date | None:
    """Where the visit figures of ``period`` stop reading rollups (None: raw events alone).

    A period of UTC days reads the rollups of its rolled-up days. Another zone's days
    are not UTC days: raw events answer while they are kept, exactly.
    """
    if not period.in_utc:
        horizon = raw_from(cursor)
        return None if horizon == EPOCH else horizon
    row = one(cursor, "SELECT max(day) FROM rolled_days WHERE day <= ?", [period.last])
    return None if row is None or row[0] is None else row[0] + timedelta(days=1)


def _horizon(cursor: duckdb.DuckDBPyConnection) -> datetime:
    """The first moment whose raw events are all kept."""
    return datetime.combine(raw_from(cursor), time())


def _views(cursor: duckdb.DuckDBPyConnection, tour: str, period: Period) -> tuple[Series, Cells]:
    """The series and the cells of views and visitors of ``tour`` over ``period``."""
    if not period.in_utc:
        return zoned_stats(cursor, tour, period, _horizon(cursor))
    fresh = fresh_from(cursor, period)
    if fresh is not None:
        return exact_stats(cursor, tour, period, fresh)
    return _merged_stats(cursor, tour, period)


def _totals(
    cursor: duckdb.DuckDBPyConnection, tour: str, period: Period, goals: tuple[str, ...] = ()
) -> dict[str, Any]:
    """The totals of ``tour``'s stats document for ``period`` (no series, no breakdown),
    and its ``goals``."""
    visits = visit_figures(cursor, tour, period, _rolled(cursor, period), totals_only=True)
    reached = {"goals": visits.goals(goals)}
    return tour_totals(cursor, [tour], period)[tour] | visits.totals() | reached


def _merged_stats(
    cursor: duckdb.DuckDBPyConnection, tour: str, period: Period
) -> tuple[Series, Cells]:
    horizon = raw_from(cursor)
    series: Series = {}
    cells: Cells = defaultdict(Cell)
    rolled_last = min(period.last, horizon - timedelta(days=1))
    if period.last >= horizon:
        mixed = period.first <= rolled_last
        first = max(period.first, horizon)
        rows = cursor.execute(
            hits_query(ids=mixed),
            {
                "tour": tour,
                "start": datetime.combine(first, time()),
                "end": period.end.replace(tzinfo=None),
                "interval": period.interval,
            },
        ).fetchall()
        for part, key, views, visitors in rows:
            ids = (visitors or []) if mixed else []  # NULL: no raw event in that group
            if part == "series":
                series[key] = (views, len(ids) if mixed else visitors)
            else:
                cells[part, key].add(views, len(ids) if mixed else visitors, None, ids)
    if period.first <= rolled_last:
        rows = cursor.execute(
            "SELECT day, dimension, key, views, visitors, sketch FROM rollups "
            "WHERE tour = ? AND day BETWEEN ? AND ? "
            f"AND dimension IN ({quoted(['total', 'hour', *(b.name for b in rolled_up())])})",
            [tour, period.first, rolled_last],
        ).fetchall()
        for day, dimension, key, views, visitors, sketch in rows:
            if dimension == "hour":
                if period.interval == "hour":
                    series[day_key(day, key)] = (views, visitors)
                continue
            if dimension == "total" and period.interval == "day":
                series[day_key(day)] = (views, visitors)
            cells[dimension, key].add(views, visitors, sketch, [])
    return series, cells


def _document(
    tour: str,
    period: Period,
    series: Series,
    cells: Cells,
    visits: VisitFigures,
    limit: int,
    geoip: bool,
) -> dict[str, Any]:
    total = cells.get(("total", ""), Cell())
    ranked = sorted(cells.items(), key=lambda kv: (-kv[1].views, kv[0]))
    found = {b.name: _rows(b, ranked, visits, limit) for b in counted()}
    found |= visits.breakdowns(limit)
    # the paths between scenes are the document's own ``transitions``, not in ``found``
    breakdown = {b.name: found[b.name] for b in shown(geoip) if b.name in found}
    starts = period.buckets()
    utc = [start.astimezone(UTC).replace(tzinfo=None) for start in starts]
    return {
        "tour": tour,
        "from": period.first.isoformat(),
        "to": period.last.isoformat(),
        "interval": period.interval,
        "timezone": period.zone.key,
        "totals": {
            "views": total.views,
            "visitors": total.distinct(),
            "visitors_exact": total.exact,
            **visits.totals(),
        },
        "series": [
            {
                "start": key,
                "views": views,
                "visitors": visitors,
                "visits": began,
                "engaged_seconds": engaged,
            }
            for start, (began, engaged) in zip(starts, visits.series(utc), strict=True)
            for key in [bucket_key(period, start)]
            for views, visitors in [series.get(key, (0, 0))]
        ],
        "breakdown": breakdown,
        # beyond raw retention, another zone's breakdowns are those of whole UTC days
        "breakdowns_exact": visits.exact,
        "transitions": visits.transitions(limit),
    }


# Filtered reads (tourviews.analytics.filters): raw events alone, in any zone.


def _filtered_stats(
    cursor: duckdb.DuckDBPyConnection,
    tour: str,
    period: Period,
    limit: int,
    filters: Filters,
    goals: tuple[str, ...],
) -> dict[str, Any]:
    """The stats document of the visits ``filters`` pick, with ``filters`` listed. Its
    ``previous`` has totals only when the period before is kept raw too."""
    series, cells, visits = _filtered(cursor, tour, period, filters)
    document = _document(tour, period, series, cells, visits, limit, with_geoip(cursor))
    document["goals"] = visits.goals(goals)
    document["filters"] = [str(f) for f in filters]
    previous = period.before()
    document["previous"] = {"from": previous.first.isoformat(), "to": previous.last.isoformat()}
    if answerable(cursor, previous):
        document["previous"] |= filtered_totals(cursor, tour, previous, filters, goals)
    return document


def _filtered(
    cursor: duckdb.DuckDBPyConnection, tour: str, period: Period, filters: Filters
) -> tuple[Series, Cells, VisitFigures]:
    labels = [bucket_key(period, start) for start in period.buckets()]
    return filtered_figures(cursor, tour, period, filters, labels)


def filtered_totals(
    cursor: duckdb.DuckDBPyConnection,
    tour: str,
    period: Period,
    filters: Filters,
    goals: tuple[str, ...] = (),
) -> dict[str, Any]:
    """The totals of the visits of ``tour`` that ``filters`` pick over ``period``, and
    their ``goals``."""
    _, cells, visits = _filtered(cursor, tour, period, filters)
    total = cells.get(("total", ""), Cell())
    return {"views": total.views, "visitors": total.visitors, "visitors_exact": True,
            **visits.totals(), "goals": visits.goals(goals)}  # fmt: skip


def _rows(
    breakdown: Breakdown,
    ranked: list[tuple[tuple[str, str], Cell]],
    visits: VisitFigures,
    limit: int,
) -> list[dict[str, Any]]:
    """The first ``limit`` rows of a breakdown counting events, with its columns from visits."""
    rows: list[dict[str, Any]] = [
        {"key": key, "views": cell.views, "visitors": cell.distinct()}
        for (part, key), cell in ranked
        if part == breakdown.name
    ][:limit]
    for column in breakdown.columns:
        if column.visits is not None:
            of_key = visits.by_key(column.visits)
            for row in rows:
                row[column.field] = of_key.get(row["key"], 0)
    return rows


def bucket_key(period: Period, start: datetime) -> str:
    """An interval's start as the document shows it: UTC as ``Z``, other zones with the offset."""
    return start.strftime("%Y-%m-%dT%H:%M:%SZ") if period.in_utc else start.isoformat()


def tour_totals(
    cursor: duckdb.DuckDBPyConnection, tours: list[str], period: Period
) -> dict[str, dict[str, Any]]:
    """Views and visitors of each tour over ``period`` (the totals of its stats document)."""
    if not period.in_utc:
        horizon = _horizon(cursor)
        found = {tour: zoned_stats(cursor, tour, period, horizon)[1] for tour in tours}
        return {
            tour: {"views": cell.views, "visitors": cell.distinct(), "visitors_exact": cell.exact}
            for tour in tours
            for cell in [found[tour].get(("total", ""), Cell())]
        }
    fresh = fresh_from(cursor, period)
    if fresh is not None:
        cells = exact_totals(cursor, tours, period, fresh)
    else:
        cells = _merged_totals(cursor, tours, period)
    return {
        tour: {"views": cell.views, "visitors": cell.distinct(), "visitors_exact": cell.exact}
        for tour in tours
        for cell in [cells.get(tour, Cell())]
    }


def _merged_totals(
    cursor: duckdb.DuckDBPyConnection, tours: list[str], period: Period
) -> dict[str, Cell]:
    horizon = raw_from(cursor)
    rolled_last = min(period.last, horizon - timedelta(days=1))
    mixed = period.first <= rolled_last and period.last >= horizon
    cells: dict[str, Cell] = defaultdict(Cell)
    if period.last >= horizon:
        visitors = "list(DISTINCT visitor::VARCHAR)" if mixed else "count(DISTINCT visitor)"
        rows = cursor.execute(
            f"SELECT tour, count(*), {visitors} FROM events WHERE kind = 'view' "
            "AND tour IN (SELECT unnest($tours)) AND ts >= $start AND ts < $end GROUP BY tour",
            {
                "tours": tours,
                "start": datetime.combine(max(period.first, horizon), time()),
                "end": period.end.replace(tzinfo=None),
            },
        ).fetchall()
        for tour, views, found in rows:
            ids = found if mixed else []
            cells[tour].add(views, len(ids) if mixed else found, None, ids)
    if period.first <= rolled_last:
        rows = cursor.execute(
            "SELECT tour, views, visitors, sketch FROM rollups WHERE dimension = 'total' "
            "AND tour IN (SELECT unnest($tours)) AND day BETWEEN $first AND $last",
            {"tours": tours, "first": period.first, "last": rolled_last},
        ).fetchall()
        for tour, views, visitors, sketch in rows:
            cells[tour].add(views, visitors, sketch, [])
    return cells


NOW = timedelta(minutes=5)  # "on the tour now": a counted beacon this recently


def visitors_now(cursor: duckdb.DuckDBPyConnection, tour: str, now: datetime) -> int:
    """Distinct visitors with a counted beacon (any event) of ``tour`` in the last 5 minutes."""
    since = (now - NOW).replace(tzinfo=None)
    row = one(
        cursor,
        "SELECT count(DISTINCT visitor) FROM events WHERE tour = ? AND ts >= ?",
        [tour, since],
    )
    return int(row[0]) if row else 0


def views_to_date(cursor: duckdb.DuckDBPyConnection, tour: str) -> int:
    """Every counted view of ``tour``: rollups before the raw events' first day, then raw."""
    horizon = raw_from(cursor)
    row = one(
        cursor,
        "SELECT (SELECT coalesce(sum(views), 0) FROM rollups WHERE tour = $tour "
        "AND dimension = 'total' AND day < $horizon) + (SELECT count(*) FROM events "
        "WHERE tour = $tour AND kind = 'view' AND ts >= $start)",
        {"tour": tour, "horizon": horizon, "start": datetime.combine(horizon, time())},
    )
    return int(row[0]) if row else 0


def series_csv(document: dict[str, Any]) -> str:
    """The series of a stats document as CSV: start,views,visitors,visits,engaged_seconds."""
    columns = {"start": pl.String, "views": pl.Int64, "visitors": pl.Int64, "visits": pl.Int64,
               "engaged_seconds": pl.Int64}  # fmt: skip
    return pl.DataFrame(document["series"], schema=columns).write_csv()
