"""What can be done with one data directory, each operation written once.

The HTTP API's routes, the commands on a directory no server holds (``control.Local``)
and the service's withdrawal path all end here; commands sent to a running server
reach it through the routes. What differs between them stays at their edge: who may
ask (the API's tokens), which tour a name means to the asker, and how an answer or an
error is shown (JSON and status codes, or a table and one line). The operations raise
the domain's errors (``InvalidValue`` and its kin, ``StorageError``), which each edge
already translates.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tourviews.analytics.abuse import abuse_report
from tourviews.analytics.breakdowns import with_geoip
from tourviews.analytics.erasure import forget
from tourviews.analytics.filters import parse_filters
from tourviews.analytics.funnel import parse_steps, tour_funnel
from tourviews.analytics.overview import overview
from tourviews.analytics.period import Period, parse_period, parse_zone
from tourviews.analytics.report import org_tours, weekly_report
from tourviews.analytics.retention import purge, retention_days
from tourviews.analytics.rollup import complete_before
from tourviews.analytics.stats import BREAKDOWN_LIMIT, tour_stats, tour_totals
from tourviews.analytics.stats import views_to_date as counted_views
from tourviews.analytics.stats import visitors_now as present_visitors
from tourviews.analytics.week import parse_week
from tourviews.mail import check_address
from tourviews.storage.clock import Clock
from tourviews.storage.database import Database
from tourviews.storage.registry import KEEP, Keep, Registry, Tour


def by_zone(tours: Iterable[Tour], tz: str | None) -> dict[str, list[str]]:
    """The tours' IDs by the zone of their days: each its own, unless ``tz`` names one for all."""
    zones: dict[str, list[str]] = {}
    for tour in tours:
        zones.setdefault(tour.timezone if tz is None else tz, []).append(tour.tour)
    return zones


@dataclass(frozen=True)
class Operations:
    """The operations on ``db`` and its ``registry``, with ``clock`` saying what today is."""

    db: Database
    registry: Registry
    clock: Clock

    @property
    def tours(self) -> Mapping[str, Tour]:
        """Every registered tour by its ID: one snapshot, which a change replaces."""
        return self.registry.tours

    def period(self, zone: str, start: str | None, end: str | None, interval: str | None) -> Period:
        """The period asked for, in days of ``zone`` (``today`` is today there)."""
        where = parse_zone(zone)
        today = self.clock.now().astimezone(where).date()
        return parse_period(today, start, end, interval, where)

    def stats(
        self, tour: Tour, start: str | None, end: str | None, interval: str | None,
        tz: str | None = None, rows: int = BREAKDOWN_LIMIT, filters: Sequence[str] = (),
    ) -> dict[str, Any]:  # fmt: skip
        """The stats document of ``tour``, in days of ``tz`` (default: the tour's zone), of
        the visits that ``filters`` (``NAME:KEY`` each) pick."""
        period = self.period(tour.timezone if tz is None else tz, start, end, interval)
        picked = parse_filters(filters)
        with self.db.using() as cursor:
            return tour_stats(cursor, tour.tour, period, rows, tour.goals, picked)

    def funnel(
        self, tour: Tour, steps: Iterable[str], start: str | None, end: str | None,
        tz: str | None = None,
    ) -> dict[str, Any]:  # fmt: skip
        """How many visits of ``tour`` took ``steps`` in order, in days of ``tz`` (default:
        the tour's zone); within raw retention alone."""
        chosen = parse_steps(steps)
        period = self.period(tour.timezone if tz is None else tz, start, end, None)
        with self.db.using() as cursor:
            return tour_funnel(cursor, tour.tour, period, chosen)

    def totals(
        self, tours: Iterable[Tour], start: str | None, end: str | None, tz: str | None
    ) -> dict[str, dict[str, Any]]:
        """Each tour's totals, in days of its own zone unless ``tz`` names one for all."""
        zones = by_zone(tours, tz)
        totals: dict[str, dict[str, Any]] = {}
        with self.db.using() as cursor:
            for zone, group in zones.items():
                totals |= tour_totals(cursor, group, self.period(zone, start, end, None))
        return totals

    def with_geoip(self) -> bool:
        """Whether the stats show countries: the server last started with ``--geoip``."""
        with self.db.using() as cursor:
            return with_geoip(cursor)

    def overview(
        self, tours: Iterable[Tour], start: str | None, end: str | None, tz: str | None
    ) -> dict[str, dict[str, Any]]:
        """Each tour's overview (``tourviews.analytics.overview``), in days of its own zone
        unless ``tz`` names one for all; with the ``from`` and ``to`` of its period."""
        tours = list(tours)
        zones = by_zone(tours, tz)
        goals = {tour.tour: tour.goals for tour in tours if tour.goals}
        found: dict[str, dict[str, Any]] = {}
        with self.db.using() as cursor:
            for zone, group in zones.items():
                period = self.period(zone, start, end, None)
                days = {"from": period.first.isoformat(), "to": period.last.isoformat()}
                for tour, entry in overview(cursor, group, period, goals).items():
                    found[tour] = days | entry
        return found

    def visitors_now(self, tour: Tour) -> int:
        """Visitors of ``tour`` in the last 5 minutes."""
        with self.db.using() as cursor:
            return present_visitors(cursor, tour.tour, self.clock.now())

    def views_to_date(self, tour: Tour) -> int:
        """Every counted view of ``tour`` (its public counter)."""
        with self.db.using() as cursor:
            return counted_views(cursor, tour.tour)

    def abuse(self, start: str | None, end: str | None) -> dict[str, Any]:
        """What was not counted over the days asked for (UTC), by reason, and who sent it."""
        period = parse_period(self.clock.now().date(), start, end, None)
        with self.db.using() as cursor:
            return abuse_report(cursor, period)

    def report(self, org: str, week: str | None, filters: Sequence[str] = ()) -> dict[str, Any]:
        """The weekly report of ``org``; ``UnknownOrganization`` when it has no tour."""
        tours = org_tours(self.registry.tours, org)
        chosen = parse_week(week, self.clock.now(), tours.values())
        picked = parse_filters(filters)
        with self.db.using() as cursor:
            return weekly_report(cursor, org, tours, chosen, picked)

    def tour_report(
        self, tour: Tour, week: str | None, filters: Sequence[str] = ()
    ) -> dict[str, Any]:
        """The weekly report of ``tour`` alone: the organization's report of one tour,
        naming it under ``tour``."""
        chosen = parse_week(week, self.clock.now(), [tour.timezone])
        picked = parse_filters(filters)
        with self.db.using() as cursor:
            zones = {tour.tour: tour.timezone}
            document = weekly_report(cursor, tour.org, zones, chosen, picked)
        return {"org": document.pop("org"), "tour": tour.tour, **document}

    def report_to(self, tour: Tour) -> tuple[str, ...]:
        """The addresses ``tour``'s own weekly report goes to."""
        return self.registry.report_to(tour.tour)

    def set_report_to(self, tour: str, recipients: Iterable[str]) -> tuple[str, ...]:
        """Send ``tour``'s own weekly report to ``recipients`` (none: no report of its own)."""
        addresses = [check_address("report_to", address) for address in recipients]
        return self.registry.set_report_to(tour, addresses)

    def put_tour(
        self, tour: str, org: str, origins: Iterable[str] | None = None,
        scenes: Iterable[str] | Keep | None = KEEP, move: bool = False,
        public_counter: bool | None = None, timezone: str | None = None,
        goals: Iterable[str] | None = None,
    ) -> Tour:  # fmt: skip
        """Register or update a tour; what is not given (None, ``KEEP``) keeps its value."""
        return self.registry.put_tour(
            tour, org, origins, scenes, move, public_counter, timezone, goals
        )

    def delete_tour(self, tour: str) -> bool:
        """Unregister ``tour`` and delete its history; False when there is no such tour."""
        return self.registry.delete_tour(tour)

    def list_tours(self) -> list[Tour]:
        """Every registered tour, by ID."""
        return sorted(self.registry.tours.values(), key=lambda t: t.tour)

    def create_token(self, org: str, admin: bool = False, tour: str | None = None) -> str:
        """A new token, shown this once."""
        return self.registry.create_token(org, admin, tour)

    def list_tokens(self) -> list[dict[str, Any]]:
        """Every token's id, organization, kind and times; never the token."""
        return self.registry.list_tokens()

    def revoke_token(self, identifier: str) -> bool:
        """Revoke the token with this id; False when there is none."""
        return self.registry.revoke_token(identifier)

    def forget(self, visitor: str) -> int:
        """Erase every stored event of ``visitor``; how many were deleted."""
        # maintenance: erasure, purge and housekeeping take turns, so none aborts another
        with self.db.maintenance, self.db.using() as cursor:
            return forget(cursor, visitor)

    def purge(self) -> int:
        """Apply retention now; how many raw events were deleted."""
        # The retention is the one the server last started with, as it wrote it in the
        # database: a command on a directory no server holds has no other way to know it.
        with self.db.maintenance, self.db.using() as cursor:
            return purge(cursor, complete_before(self.clock.now()), retention_days(cursor))

    def compact(self) -> tuple[int, int]:
        """Rewrite the database without deleted rows; its size in bytes before and after."""
        return self.db.compact()
