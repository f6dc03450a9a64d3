"""A validated range of UTC days with an interval: what every stats query is asked."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from storage.errors import InvalidValue

MAX_DAYS = 400
FIRST_DAY = date(1970, 1, 1)
LAST_DAY = date(9999, 12, 30)  # a period ends the day after its last day
DEFAULT_DAYS = 30
INTERVALS = {"day": timedelta(days=1), "hour": timedelta(hours=1)}


@dataclass(frozen=True, slots=True)
class Period:
    first: date
    last: date  # inclusive
    interval: str  # 'day' | 'hour'

    @property
    def start(self) -> datetime:
        return datetime.combine(self.first, time(), tzinfo=UTC)

    @property
    def end(self) -> datetime:
        """The first moment after the period."""
        return datetime.combine(self.last + timedelta(days=1), time(), tzinfo=UTC)

    def buckets(self) -> list[datetime]:
        """The start of every interval of the period, in order."""
        step = INTERVALS[self.interval]
        count = int((self.end - self.start) / step)
        return [self.start + step * i for i in range(count)]


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


def parse_period(today: date, first: str | None, last: str | None, interval: str | None) -> Period:
    """The period asked for; by default the 30 days up to ``today``, by day."""
    end = _day("to", last) if last else today
    start = _day("from", first) if first else end - timedelta(days=DEFAULT_DAYS - 1)
    if start > end:
        raise InvalidValue("from", "from must not be after to")
    if (end - start).days + 1 > MAX_DAYS:
        raise InvalidValue("to", f"a range may span at most {MAX_DAYS} days")
    interval = interval or "day"
    if interval not in INTERVALS:
        raise InvalidValue("interval", "interval must be 'day' or 'hour'")
    return Period(start, end, interval)
