"""Filters on a read: ``filter=NAME:KEY``, a breakdown of the registry and one of its keys.

A filter picks visits: those that count under the key in that breakdown, as its row
in the stats document counts them. ``device:mobile`` picks the visits whose view came
from a phone, ``scene:kitchen`` those that entered the kitchen, ``entry_scene:lobby``
those that began in the lobby, ``action:lead-form`` those that sent the form. Several
filters pick the visits that each of them picks (AND). A filtered read counts the
events of the picked visits alone: their views and visitors, their visits, engaged
time and breakdowns. An event outside every visit (a scene event after a pause, with
no view before it) belongs to no picked visit. A key is matched as the breakdown
shows it, so a row's key (``(direct)``, ``(other)`` or a scene) filters exactly the
visits that row counts.

The filtered figures come from raw events alone: the rollups keep one breakdown at a
time, so a day whose raw events are purged cannot be cut by another. A period that
begins before the raw events do is refused (``InvalidValue`` on ``filter``, naming
its first day that can be answered), rather than answered for part of its days.

A key reaches the SQL as a bound parameter, never as text of the query: the SQL is
written from the registry's names alone.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import duckdb

from tourviews.analytics.breakdowns import (
    TOTAL,
    Breakdown,
    counted,
    filterable,
    groupings,
    key_columns,
    parts,
)
from tourviews.analytics.parts import EPOCH, Cell, Cells, Series, raw_from
from tourviews.analytics.period import Period
from tourviews.analytics.visits import SERIES, VisitFigures, rows_of_runs
from tourviews.analytics.zones import INTERVALS
from tourviews.storage.errors import InvalidValue
from tourviews.storage.visit import IDLE_SECONDS

FIELD = "filter"
MAX_FILTERS = 10
MAX_KEY = 200  # characters: a host name, a campaign (100), a scene (64)


@dataclass(frozen=True, slots=True)
class Filter:
    """One ``NAME:KEY`` of a read."""

    breakdown: Breakdown
    key: str

    def __str__(self) -> str:
        return f"{self.breakdown.name}:{self.key}"


Filters = Sequence[Filter]


def names() -> str:
    """The names a filter may give, as its error message lists them."""
    return ", ".join(b.name for b in filterable())


def parse_filter(text: str) -> Filter:
    """``NAME:KEY`` as a ``Filter``; ``InvalidValue`` on ``filter`` when it is not one."""
    name, colon, key = text.partition(":")
    if not colon:
        raise InvalidValue(FIELD, f"filter {text[:MAX_KEY]!r}: write it NAME:KEY, NAME one of "
                                  f"{names()}")  # fmt: skip
    found = {b.name: b for b in filterable()}.get(name)
    if found is None:
        raise InvalidValue(FIELD, f"filter {name[:MAX_KEY]!r}: no such breakdown to filter by; "
                                  f"one of {names()}")  # fmt: skip
    if not key or len(key) > MAX_KEY or not key.isprintable():
        raise InvalidValue(
            FIELD, f"filter {name}: the key is 1-{MAX_KEY} printable characters, as the "
            f"breakdown's rows show them",
        )  # fmt: skip
    return Filter(found, key)


def parse_filters(texts: Iterable[str]) -> tuple[Filter, ...]:
    """Each ``NAME:KEY`` given, in order; at most ``MAX_FILTERS``."""
    filters = tuple(parse_filter(text) for text in texts)
    if len(filters) > MAX_FILTERS:
        raise InvalidValue(FIELD, f"at most {MAX_FILTERS} filters")
    return filters


def picked(filters: Filters) -> tuple[str, dict[str, str]]:
    """The events of ``$tour`` from ``$start`` to ``$end`` (naive UTC) in the visits that
    ``filters`` pick, as an SQL subquery with the columns of ``events``, ``day`` (UTC) and
    ``run`` (one number per visit); and the parameters that hold the keys, to be bound
    with ``$tour``, ``$start`` and ``$end``.

    The events are cut into visits as ``tourviews.analytics.visits`` cuts them: a visit is
    a view and what follows it, within a UTC day, until a pause of 30 minutes.
    """
    keys = {f"filter_{n}": f.key for n, f in enumerate(filters)}
    # Each filter of a breakdown counting events marks the events it needs (a phone's
    # view); a visit is picked when it has one. One counting visits asks its visit.
    marks = {p: f.breakdown.counted_as(f"${p}") for p, f in zip(keys, filters, strict=True)
             if f.breakdown.counts != "visit"}  # fmt: skip
    conditions = " AND ".join(
        f"bool_or({parameter})" if parameter in marks else f.breakdown.matches(f"${parameter}")
        for parameter, f in zip(keys, filters, strict=True)
    )
    # Cutting visits sorts the events: first leave out the visitors without a marked event,
    # and sort narrow rows (the events' row IDs pick the whole rows after).
    visitors = "".join(
        f" AND visitor IN (SELECT visitor FROM events WHERE tour = $tour AND ts >= $start "
        f"AND ts < $end AND {mark})"
        for mark in marks.values()
    )
    marked = "".join(f", {mark} AS {parameter}" for parameter, mark in marks.items())
    # One order for both windows, and no partition: DuckDB sorts once and runs through.
    # A visit's number is the count of the starts up to its view, over all the visitors.
    # At one moment a view comes first, as in the visit cut; the order of other events at
    # one moment moves no event to another visit, so it is not sorted on (it costs).
    order = "ORDER BY visitor, ts, kind <> 'view'"
    span = "tour = $tour AND ts >= $start AND ts < $end"
    query = f"""(
    WITH cut AS MATERIALIZED (
        SELECT * EXCLUDE (starts), sum(starts::INTEGER) OVER (w ROWS UNBOUNDED PRECEDING) AS run
        FROM (
            SELECT rowid AS id, visitor, ts, kind, scene, action{marked}, coalesce(
                kind = 'view' OR visitor <> lag(visitor) OVER w
                    OR ts::DATE <> (lag(ts) OVER w)::DATE
                    OR ts - lag(ts) OVER w > INTERVAL {IDLE_SECONDS} SECOND,
                TRUE) AS starts
            FROM events WHERE {span}{visitors}
            WINDOW w AS ({order})
        )
        WINDOW w AS ({order})
    ),
    chosen AS (
        -- a run with a view began with it: it is a visit (a run without is no visit's)
        SELECT run FROM cut GROUP BY run HAVING bool_or(kind = 'view') AND {conditions or "TRUE"}
    )
    SELECT events.*, ts::DATE AS day, run FROM events
    JOIN (SELECT id, run FROM cut SEMI JOIN chosen USING (run)) ON events.rowid = id
    WHERE {span}
)"""
    return query, keys


def first_day(cursor: duckdb.DuckDBPyConnection, period: Period) -> date | None:
    """The first day of ``period``'s zone whose raw events are all kept; None: every day."""
    horizon = raw_from(cursor)
    if horizon == EPOCH:
        return None
    moment = datetime.combine(horizon, time(), UTC)
    day = moment.astimezone(period.zone).date()
    return day if Period(day, day, "day", period.zone).start >= moment else day + timedelta(days=1)


def check_kept(cursor: duckdb.DuckDBPyConnection, period: Period) -> None:
    """Refuse a filtered read of a period whose raw events are not all kept."""
    first = first_day(cursor, period)
    if first is not None and period.first < first:
        raise InvalidValue(
            FIELD, f"a filtered read counts raw events, kept from {first.isoformat()} "
            f"(earlier days are kept one breakdown at a time): ask from {first.isoformat()} on",
        )  # fmt: skip


def answerable(cursor: duckdb.DuckDBPyConnection, period: Period) -> bool:
    """Whether a filtered read of ``period`` can be answered."""
    first = first_day(cursor, period)
    return first is None or period.first >= first


def stats_query(filters: Filters) -> tuple[str, dict[str, str]]:
    """The rows of a filtered stats document: ``event`` rows (part, key, views, visitors)
    of the total, the series and the breakdowns counting events, and ``visit`` rows
    (dimension, key, amount, visitor IDs) as ``tourviews.analytics.visits`` makes them."""
    events, keys = picked(filters)
    grouped = [TOTAL, ("series", "label", "view"), *parts(counted())]
    query = f"""
WITH picked AS MATERIALIZED {events},
hits AS MATERIALIZED (
    SELECT e.*, i.label
    FROM (
        SELECT ts, kind, visitor::VARCHAR AS visitor, {key_columns(counted())} FROM picked
        WHERE kind IN ('view', 'scene')
    ) e
    ASOF JOIN {INTERVALS} i ON e.ts >= i.start
)
SELECT 'event', part, key, views, visitors, NULL
FROM ({groupings(grouped)}) AS g(part, key, views, visitors)
UNION ALL
SELECT 'visit', dimension, key, amount, NULL, ids
FROM ({rows_of_runs("(SELECT * FROM picked)", SERIES)})
    AS v(tour, bucket, dimension, key, amount, ids)
"""
    return query, keys


def filtered_figures(
    cursor: duckdb.DuckDBPyConnection,
    tour: str,
    period: Period,
    filters: Filters,
    labels: list[str],
) -> tuple[Series, Cells, VisitFigures]:
    """The series, cells and visit figures of ``tour``'s visits that ``filters`` pick;
    ``labels``: the series' keys, one for each of ``period.buckets()``."""
    check_kept(cursor, period)
    query, keys = stats_query(filters)
    start, end, *starts = (
        moment.astimezone(UTC).replace(tzinfo=None)
        for moment in (period.start, period.end, *period.buckets())
    )
    parameters: dict[str, Any] = {"tour": tour, "start": start, "end": end, "starts": starts,
                                  "labels": labels, **keys}  # fmt: skip
    series: Series = {}
    cells: Cells = defaultdict(Cell)
    visits = VisitFigures()
    for source, part, key, amount, visitors, ids in cursor.execute(query, parameters).fetchall():
        if source == "visit":
            visits.add(part, key, amount, ids or [])
        elif part == "series":
            series[key] = (amount, visitors)
        else:
            cells[part, key].add(amount, visitors, None, [])
    return series, cells, visits
