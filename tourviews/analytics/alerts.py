"""Alerts for operators: traffic spikes on a tour, sources that keep being stopped.

- **spike**: a tour's counted views in one hour are at least ``SPIKE_MIN`` and at least
  ``SPIKE_FACTOR`` times its *usual* level: the mean views per hour over the 168 hours
  (7 days) before that hour, quiet hours included, but never less than ``USUAL_FLOOR``
  (a quiet tour needs 50 views in an hour). A tour whose counted history began less
  than ``HISTORY`` (24 hours) before the hour raises none: its traffic starts from
  zero, and anything would look like a spike.
- **throttled** / **rotation**: one source (IP hash) was throttled, or had visitor IDs
  refused for rotation, in at least ``PERSISTENT_HOURS`` different hours of the range.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, time, timedelta
from typing import Any

import duckdb

from tourviews.analytics.period import Period
from tourviews.analytics.stats import raw_from
from tourviews.storage.database import one
from tourviews.storage.outcomes import Outcome

SPIKE_MIN = 20
SPIKE_FACTOR = 5.0
USUAL_FLOOR = 10.0  # views per hour
HISTORY = timedelta(hours=24)
USUAL_HOURS = 168
PERSISTENT_HOURS = 3
HOUR = timedelta(hours=1)

# Counted views per tour and hour: raw events where kept, the hourly rollups before.
HOURLY = """
SELECT tour, date_trunc('hour', ts) AS hour, count(*) FROM events
WHERE kind = 'view' AND ts >= $start AND ts < $end GROUP BY ALL
UNION ALL
SELECT tour, day + to_hours(key::INTEGER), views FROM rollups
WHERE dimension = 'hour' AND day >= $start::DATE AND day < $raw_from
"""


def spikes(cursor: duckdb.DuckDBPyConnection, period: Period) -> list[dict[str, Any]]:
    start = datetime.combine(period.first, time())
    end = period.end.replace(tzinfo=None)
    rows = cursor.execute(
        HOURLY,
        {"start": start - USUAL_HOURS * HOUR, "end": end, "raw_from": raw_from(cursor)},
    ).fetchall()
    hourly: dict[str, dict[datetime, int]] = defaultdict(dict)
    for tour, hour, views in rows:
        hourly[tour][hour] = views
    alerts = []
    for tour, views_by_hour in sorted(hourly.items()):
        began: datetime | None = None
        for hour, views in sorted(views_by_hour.items()):
            if not start <= hour < end or views < SPIKE_MIN:
                continue
            before = (views_by_hour.get(hour - n * HOUR, 0) for n in range(1, USUAL_HOURS + 1))
            usual = sum(before) / USUAL_HOURS
            if views < SPIKE_FACTOR * max(usual, USUAL_FLOOR):
                continue
            began = began or _history_began(cursor, tour)
            if hour - began >= HISTORY:
                alerts.append(
                    {"kind": "spike", "tour": tour, "hour": f"{hour:%Y-%m-%dT%H:00:00Z}",
                     "views": views, "usual": round(usual, 1)}
                )  # fmt: skip
    return alerts


def _history_began(cursor: duckdb.DuckDBPyConnection, tour: str) -> datetime:
    """The hour of the tour's first counted view: in its rollups, or its raw events."""
    row = one(
        cursor,
        "SELECT least((SELECT min(day + to_hours(key::INTEGER)) FROM rollups "
        "WHERE tour = $tour AND dimension = 'hour'), "
        "(SELECT min(ts) FROM events WHERE tour = $tour AND kind = 'view'))",
        {"tour": tour},
    )
    assert row is not None and row[0] is not None  # the tour has views: it is a candidate
    began: datetime = row[0]
    return began.replace(minute=0, second=0, microsecond=0)


def persistent_sources(cursor: duckdb.DuckDBPyConnection, period: Period) -> list[dict[str, Any]]:
    rows = cursor.execute(
        "SELECT reason, lower(hex(ip_hash)), count(DISTINCT hour), sum(beacons), "
        "min(hour), max(hour) FROM drop_counters "
        f"WHERE reason IN ('{Outcome.THROTTLED}', '{Outcome.ROTATION}') "
        "AND octet_length(ip_hash) = 16 "
        "AND hour >= ? AND hour < ? GROUP BY ALL HAVING count(DISTINCT hour) >= ? "
        "ORDER BY 4 DESC, 2",
        [
            datetime.combine(period.first, time()),
            period.end.replace(tzinfo=None),
            PERSISTENT_HOURS,
        ],
    ).fetchall()
    return [
        {"kind": reason, "ip_hash": ip_hash, "hours": hours, "beacons": int(beacons),
         "first": f"{first:%Y-%m-%dT%H:00:00Z}", "last": f"{last:%Y-%m-%dT%H:00:00Z}"}
        for reason, ip_hash, hours, beacons, first, last in rows
    ]  # fmt: skip


def alerts(cursor: duckdb.DuckDBPyConnection, period: Period) -> list[dict[str, Any]]:
    return spikes(cursor, period) + persistent_sources(cursor, period)
