"""Funnels: how many visits took a list of steps in order, each after the ones before.

A step is ``view`` (the visit itself: every visit begins with its view, so it can
only be the first step), ``scene:NAME`` (the visit entered that scene, with its view
or a scene beacon) or ``action:NAME``. A visit reaches step k when it took steps 1
to k in that order, one after the other, other events in between allowed: a visit
that takes a later step before an earlier one reaches only as far as its order goes.

Visits are cut as the stats document cuts them (``tourviews.analytics.visits``), so
a funnel reads the raw events of its period: within raw retention it is exact, and
beyond it there is nothing to read it from (rollups keep counts, not orders).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, time
from typing import Any

import duckdb

from tourviews.analytics.parts import raw_from
from tourviews.analytics.period import Period
from tourviews.analytics.visits import GOAL, GOAL_EVENTS, RUNS
from tourviews.storage import registry
from tourviews.storage.database import one
from tourviews.storage.errors import InvalidValue
from tourviews.storage.visit import IDLE_SECONDS

STEP = re.compile(f"view|{registry.GOAL.pattern}")  # a goal, or the visit itself
MAX_STEPS = 10

# Each visit as one string of its steps in order, every step between bars
# (``|scene:lobby||action:lead-form|``): a funnel of k steps is then a regular
# expression over it. Names hold no bar, so a step matches whole steps alone.
PATHS = """
visits AS MATERIALIZED (
    SELECT '|' || array_to_string([step.token FOR step IN list_sort(list({{'ts': ts,
        'later': kind <> 'view', 'scene': scene, 'token': {goal}}}) FILTER ({goal_events}))],
        '||') || '|' AS path
    FROM runs
    WHERE run > 0  -- run 0: the span (or the UTC day) began inside it
    GROUP BY tour, visitor, day, run
    HAVING arg_min(kind, {{'ts': ts, 'later': kind <> 'view'}}) = 'view'
)
SELECT count(*){reached} FROM visits
"""


def parse_steps(values: Iterable[str]) -> tuple[str, ...]:
    """The steps asked for, or a 400 naming ``step``."""
    steps = tuple(values)
    if not steps:
        raise InvalidValue("step", "a funnel needs at least one step (step=view&step=scene:NAME)")
    if len(steps) > MAX_STEPS:
        raise InvalidValue("step", f"a funnel has at most {MAX_STEPS} steps")
    for at, step in enumerate(steps):
        if not STEP.fullmatch(step):
            raise InvalidValue(
                "step", f"a step is view, scene:NAME or action:NAME (NAME: 1-64 characters of "
                f"A-Z a-z 0-9 _ -), not {step!r}",
            )  # fmt: skip
        if step == "view" and at > 0:
            raise InvalidValue("step", "view can only be the first step: a visit begins with it")
    return steps


def funnel_query(patterns: int, condition: str = "TRUE") -> str:
    """The query of a funnel: the period's visits, then how many match each of
    ``patterns`` regular expressions ($p0, $p1, ...).

    ``condition``: a further SQL condition on the events read (``filter=`` on reads:
    its parameters go with the funnel's), applied before they are cut into visits.
    """
    where = f"tour = $tour AND ts >= $start AND ts < $end AND ({condition})"
    reached = "".join(f", count(*) FILTER (regexp_matches(path, $p{n}))" for n in range(patterns))
    paths = PATHS.format(reached=reached, goal=GOAL, goal_events=GOAL_EVENTS)
    return RUNS.format(where=where, idle=IDLE_SECONDS) + paths


def tour_funnel(
    cursor: duckdb.DuckDBPyConnection,
    tour: str,
    period: Period,
    steps: tuple[str, ...],
    condition: str = "TRUE",
    values: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The funnel of ``steps`` over the visits of ``tour`` that began in ``period``.

    ``condition`` and ``values``: a filter's SQL condition on the events, and its
    parameters (see ``funnel_query``). A period that begins before the raw events
    kept is refused, naming ``from``.
    """
    start, end = (
        moment.astimezone(UTC).replace(tzinfo=None) for moment in (period.start, period.end)
    )
    horizon = raw_from(cursor)
    if start < datetime.combine(horizon, time()):
        raise InvalidValue(
            "from", f"a funnel reads the raw events, kept from {horizon.isoformat()} (UTC) on: "
            "from must be a day that begins after that",
        )  # fmt: skip
    later = steps[1:] if steps[0] == "view" else steps
    patterns = [".*".join(rf"\|{step}\|" for step in later[: n + 1]) for n in range(len(later))]
    parameters = {"tour": tour, "start": start, "end": end, **(values or {})}
    parameters |= {f"p{n}": pattern for n, pattern in enumerate(patterns)}
    row = one(cursor, funnel_query(len(patterns), condition), parameters)
    visits, *reached = row if row is not None else (0,)
    counts = [visits, *reached] if steps[0] == "view" else reached
    return {
        "tour": tour,
        "from": period.first.isoformat(),
        "to": period.last.isoformat(),
        "timezone": period.zone.key,
        "steps": [{"step": step, "visits": n} for step, n in zip(steps, counts, strict=True)],
    }
