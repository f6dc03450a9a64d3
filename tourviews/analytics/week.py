"""A week of the weekly report: seven days from a Monday, and the week before it.

Each tour's week is seven days of its own time zone; "the last complete one" is the
last that is over in every tour's zone.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from tourviews.analytics.period import FIRST_DAY, UTC_ZONE, Period
from tourviews.storage.errors import InvalidValue

WEEK = timedelta(days=7)
ISO_WEEK = re.compile(r"([0-9]{4})-W([0-9]{2})")
ISO_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
SHAPE = "week must be an ISO week like 2026-W48 or a day in it as YYYY-MM-DD"


@dataclass(frozen=True, slots=True)
class Week:
    first: date  # a Monday

    @property
    def last(self) -> date:
        return self.first + timedelta(days=6)

    @property
    def previous(self) -> Week:
        return Week(self.first - WEEK)

    @property
    def label(self) -> str:
        """The ISO week, as ``2026-W48``."""
        year, number, _ = self.first.isocalendar()
        return f"{year}-W{number:02d}"

    def period(self, zone: ZoneInfo = UTC_ZONE) -> Period:
        """The stats period of the week, by day, in ``zone``."""
        return Period(self.first, self.last, "day", zone)


def parse_week(value: str | None, now: datetime, zones: Iterable[str] = ()) -> Week:
    """The week asked for (``2026-W48``, or any day of it); by default the last complete one.

    Weeks begin on Monday. Today is the earliest date of ``now`` in ``zones`` (the tours'
    time zones; UTC without one): the default week is over in every tour's zone.
    """
    today = min((now.astimezone(ZoneInfo(zone)).date() for zone in zones), default=None)
    today = today or now.astimezone(UTC).date()
    if not value:
        return Week(today - timedelta(days=today.weekday()) - WEEK)
    first: date | None = None
    try:
        if found := ISO_WEEK.fullmatch(value):
            first = date.fromisocalendar(int(found[1]), int(found[2]), 1)
        elif ISO_DAY.fullmatch(value):
            day = date.fromisoformat(value)
            first = day - timedelta(days=day.weekday())
    except ValueError:  # week 54, the 31st of November, year 0
        pass
    if first is None:
        raise InvalidValue("week", SHAPE)
    if first > today:
        raise InvalidValue("week", f"week must have begun by today ({today})")
    if first < FIRST_DAY + WEEK:  # not first - WEEK: before year 1 there is no date
        raise InvalidValue("week", f"the week before it must begin on {FIRST_DAY} or later")
    return Week(first)
