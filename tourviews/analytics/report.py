"""An organization's weekly report: each tour's week against the week before.

The report document is gathered here from the stats documents; ``tourviews.analytics.report_email``
renders it. A figure or breakdown is shown when the stats document has it, so one added
to the stats document needs a line in ``FIGURES``, or a ``report`` title in its entry of
``tourviews.analytics.breakdowns``, and nothing more.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import duckdb

from tourviews.analytics.filters import Filters
from tourviews.analytics.period import Period
from tourviews.analytics.stats import filtered_totals, tour_stats, tour_totals
from tourviews.analytics.week import Week
from tourviews.storage.errors import InvalidValue
from tourviews.storage.registry import Tour, check_org

ROWS = 5  # rows of each breakdown in a tour's section
# Tours with a section of their own, the most viewed first; the others are a line of
# the overview. E-mail clients cut long messages short (Gmail past 102 KB).
DETAILED = 10


@dataclass(frozen=True, slots=True)
class Figure:
    """A total of the stats document, as the report shows it."""

    key: str
    label: str
    kind: str  # 'count' | 'seconds' | 'decimal' | 'share'
    lower_is_better: bool = False


FIGURES = (
    Figure("views", "Views", "count"),
    Figure("visitors", "Visitors", "count"),
    Figure("visits", "Visits", "count"),
    Figure("engaged_seconds", "Engaged time", "seconds"),
    Figure("engaged_seconds_per_visit", "Engaged time per visit (median)", "seconds"),
    Figure("scenes_per_visit", "Scenes per visit", "decimal"),
    Figure("bounce_rate", "Bounce rate", "share", lower_is_better=True),
)
VIEWS = FIGURES[0]


class UnknownOrganization(InvalidValue):
    """No tour is registered for the organization."""


def org_tours(registered: Mapping[str, Tour], org: str) -> dict[str, str]:
    """The tours of ``org`` with their time zones, by name; an organization with none is unknown."""
    check_org(org)
    tours = {t.tour: t.timezone for t in sorted(registered.values(), key=lambda t: t.tour)
             if t.org == org}  # fmt: skip
    if not tours:
        raise UnknownOrganization("org", f"no tours are registered for organization {org}")
    return tours


def weekly_report(
    cursor: duckdb.DuckDBPyConnection, org: str, zones: Mapping[str, str], week: Week,
    filters: Filters = (),
) -> dict[str, Any]:  # fmt: skip
    """The report document of ``org``'s tours (with their time zones) for ``week``.

    ``tours`` lists every tour with its totals of both weeks, the most viewed first;
    ``details`` holds the stats documents of both weeks for the first ``DETAILED`` of
    them that had a view in either week. Each tour's week is seven days of its zone.
    With ``filters``, every figure is that of the visits they pick, and ``filters`` lists them.
    """
    tours = list(zones)
    totals: dict[str, dict[str, Any]] = {}
    before: dict[str, dict[str, Any]] = {}
    for zone in set(zones.values()):
        group = [tour for tour in tours if zones[tour] == zone]
        if filters:
            totals |= _filtered(cursor, group, week.period(ZoneInfo(zone)), filters)
            before |= _filtered(cursor, group, week.previous.period(ZoneInfo(zone)), filters)
            continue
        totals |= tour_totals(cursor, group, week.period(ZoneInfo(zone)))
        before |= tour_totals(cursor, group, week.previous.period(ZoneInfo(zone)))
    ranked = sorted(tours, key=lambda tour: (-totals[tour]["views"], -before[tour]["views"], tour))
    seen = [tour for tour in ranked if totals[tour]["views"] or before[tour]["views"]]
    return {
        "org": org,
        "week": week.label,
        "from": week.first.isoformat(),
        "to": week.last.isoformat(),
        "previous": {"from": week.previous.first.isoformat(), "to": week.previous.last.isoformat()},
        "tours": [
            {"tour": tour, "totals": totals[tour], "previous": before[tour]} for tour in ranked
        ],
        "details": [
            {
                "tour": tour,
                "current": tour_stats(
                    cursor, tour, week.period(ZoneInfo(zones[tour])), ROWS, filters=filters
                ),
                "previous": tour_stats(
                    cursor,
                    tour,
                    week.previous.period(ZoneInfo(zones[tour])),
                    ROWS,
                    filters=filters,
                ),
            }
            for tour in seen[:DETAILED]
        ],
    } | ({"filters": [str(f) for f in filters]} if filters else {})


def _filtered(
    cursor: duckdb.DuckDBPyConnection, tours: list[str], period: Period, filters: Filters
) -> dict[str, dict[str, Any]]:
    """Each tour's totals of the visits ``filters`` pick (one read a tour: raw events)."""
    return {tour: filtered_totals(cursor, tour, period, filters) for tour in tours}


@dataclass(frozen=True, slots=True)
class Change:
    """How a figure moved from the week before: ``text`` to show, and whether it is good."""

    text: str
    good: bool | None  # None: no change, or nothing to judge it by


def change(figure: Figure, now: float, before: float) -> Change:
    """``▲ 25%``, ``▼ 10%``, ``new`` (nothing the week before) or ``no change``.

    A share moves by percentage points: a bounce rate from 40% to 50% went up 10 points,
    not 25%.
    """
    points = round(abs(now - before) * 100)
    if now == before or (figure.kind == "share" and points == 0):  # 50% and 50.2% read alike
        return Change("no change", None)
    better = (now > before) != figure.lower_is_better
    arrow = "▲" if now > before else "▼"
    if figure.kind == "share":
        return Change(f"{arrow} {points} {'pt' if points == 1 else 'pts'}", better)
    if before == 0:
        return Change("new", better)
    percent = abs(now - before) / before * 100
    return Change(f"{arrow} {percent:.0f}%" if percent >= 1 else f"{arrow} <1%", better)


@dataclass(frozen=True, slots=True)
class Line:
    """One figure of a tour: this week, the week before, and the change."""

    label: str
    now: str
    before: str
    change: Change


def figure_lines(current: Mapping[str, Any], previous: Mapping[str, Any]) -> list[Line]:
    """A line for each figure of ``FIGURES`` that this week's totals have."""
    lines = []
    for figure in FIGURES:
        if figure.key not in current:
            continue
        now, before = current[figure.key], previous.get(figure.key)
        # A median or a mean of no visits is null: there is nothing to compare.
        moved = Change("", None) if now is None or before is None else change(figure, now, before)
        # Visitors over several rolled-up days are a sketch's estimate (visitors_exact).
        about = "≈ " if figure.key == "visitors" and not current.get("visitors_exact", True) else ""
        lines.append(Line(figure.label, about + shown(figure, now), shown(figure, before), moved))
    return lines


def shown(figure: Figure, value: float | None) -> str:
    """A figure's value as the report prints it: ``1,234``, ``3 min 05 s``, ``1.5``, ``40%``."""
    if value is None:
        return "\N{EN DASH}"
    if figure.kind == "seconds":
        seconds = round(value)
        if seconds < 60:
            return f"{seconds} s"
        if seconds < 3600:
            return f"{seconds // 60} min {seconds % 60:02d} s"
        return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"
    if figure.kind == "decimal":
        return f"{value:.1f}"
    if figure.kind == "share":
        return f"{value * 100:.0f}%"
    return f"{round(value):,}"
