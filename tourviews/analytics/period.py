"""A validated range of days in a time zone, with an interval: what every stats query is asked.

The days are the zone's own: a day in Asia/Kolkata begins at 18:30 UTC the day
before, and a day with a DST change has 23 or 25 hours.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from tourviews.storage.errors import InvalidValue
from tourviews.storage.registry import check_timezone

MAX_DAYS = 400
FIRST_DAY = date(1970, 1, 1)
LAST_DAY = date(9999, 12, 30)  # a period ends the day after its last day
DEFAULT_DAYS = 30
INTERVALS = {"day": timedelta(days=1), "hour": timedelta(hours=1)}
UTC_ZONE = ZoneInfo("UTC")


@dataclass(frozen=True, slots=True)
class Period:
    first: date
    last: date  # inclusive
    interval: str  # 'day' | 'hour'
    zone: ZoneInfo = UTC_ZONE

    @property
    def in_utc(self) -> bool:
        return self.zone.key == "UTC"

    @property
    def start(self) -> datetime:
        """The period's first moment, in UTC: midnight of its first day in its zone."""
        return _midnight(self.first, self.zone)

    @property
    def end(self) -> datetime:
        """The first moment after the period, in UTC."""
        return _midnight(self.last + timedelta(days=1), self.zone)

    def buckets(self) -> list[datetime]:
        """The start of every interval of the period, in order, in its zone.

        An hour is 60 minutes of elapsed time: on a DST change the day has 23 or 25 of
        them, and the repeated hour is two buckets with two offsets.
        """
        if self.interval == "day":
            days = (self.last - self.first).days + 1
            return [
                _midnight(self.first + timedelta(days=n), self.zone).astimezone(self.zone)
                for n in range(days)
            ]
        count = int((self.end - self.start) / INTERVALS["hour"])
        return [(self.start + timedelta(hours=n)).astimezone(self.zone) for n in range(count)]

    def before(self) -> Period:
        """The period of as many days just before this one."""
        days = self.last - self.first + timedelta(days=1)
        return Period(self.first - days, self.last - days, self.interval, self.zone)


def _midnight(day: date, zone: ZoneInfo) -> datetime:
    """The moment a day begins in ``zone``, in UTC (where midnight is skipped, the hour after)."""
    local = datetime.combine(day, time(), tzinfo=zone)
    moment = local.astimezone(UTC)
    if moment.astimezone(zone).date() != day:  # midnight does not exist that day
        moment = datetime.combine(day, time(1), tzinfo=zone).astimezone(UTC)
    return moment


def parse_zone(value: str, field: str = "tz") -> ZoneInfo:
    """An IANA time zone by name (``Asia/Almaty``), or a 400 naming ``field``."""
    try:
        return ZoneInfo(check_timezone(value))
    except InvalidValue as exc:
        raise InvalidValue(field, exc.message.replace("timezone", field, 1)) from None


def _day(field: str, value: str) -> date:
    try:
        day = date.fromisoformat(value) if len(value) == 10 else _fail(field)
    except ValueError:
        return _fail(field)
    return day if FIRST_DAY <= day <= LAST_DAY else _fail(field)


def _fail(field: str) -> date:
    raise InvalidValue(
        field, f"{field} must be a date as YYYY-MM-DD from {FIRST_DAY} to {LAST_DAY}"
    )


def parse_period(
    today: date,
    first: str | None,
    last: str | None,
    interval: str | None,
    zone: ZoneInfo = UTC_ZONE,
) -> Period:
    """The period asked for; by default the 30 days up to ``today`` (in ``zone``), by day."""
    end = _day("to", last) if last else today
    start = _day("from", first) if first else end - timedelta(days=DEFAULT_DAYS - 1)
    if start > end:
        raise InvalidValue("from", "from must not be after to")
    if (end - start).days + 1 > MAX_DAYS:
        raise InvalidValue("to", f"a range may span at most {MAX_DAYS} days")
    interval = interval or "day"
    if interval not in INTERVALS:
        raise InvalidValue("interval", "interval must be 'day' or 'hour'")
    return Period(start, end, interval, zone)
