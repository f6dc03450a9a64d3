"""What was not counted, and who sent it: the operators' abuse document."""

from __future__ import annotations

from typing import Any

import duckdb

from tourviews.analytics.alerts import alerts
from tourviews.analytics.period import Period
from tourviews.storage.outcomes import REASONS, Outcome

TOP = 10

# Every beacon of the period as (moment, tour, ip_hash, reason, beacons, visitor): counted
# ones from the events (one row each), the others from the hourly drop counters.
BEACONS = f"""
WITH beacons AS (
    SELECT ts AS moment, tour, ip_hash, '{Outcome.COUNTED}' AS reason, 1 AS beacons, visitor
    FROM events WHERE ts >= $start AND ts < $end
    UNION ALL
    SELECT hour, tour, ip_hash, reason, beacons, NULL
    FROM drop_counters WHERE hour >= $start AND hour < $end
)
"""


def abuse_report(cursor: duckdb.DuckDBPyConnection, period: Period) -> dict[str, Any]:
    """The contract's abuse document over ``period``."""
    bounds = {"start": period.start.replace(tzinfo=None), "end": period.end.replace(tzinfo=None)}
    daily = cursor.execute(
        BEACONS
        + "SELECT strftime(moment, '%Y-%m-%d'), reason, sum(beacons) FROM beacons GROUP BY ALL",
        bounds,
    ).fetchall()
    by_day: dict[str, dict[str, int]] = {}
    for day, reason, count in daily:
        by_day.setdefault(day, {})[reason] = int(count)
    empty = dict.fromkeys((Outcome.COUNTED.value, *REASONS), 0)
    sources = cursor.execute(
        BEACONS
        + f"""SELECT lower(hex(ip_hash)), sum(beacons),
                    sum(beacons) FILTER (reason = '{Outcome.THROTTLED}'), count(DISTINCT visitor)
             FROM beacons WHERE octet_length(ip_hash) = 16 GROUP BY 1
             ORDER BY 2 DESC, 1 LIMIT $top""",
        bounds | {"top": TOP},
    ).fetchall()
    tours = cursor.execute(
        BEACONS
        + f"""SELECT tour, sum(beacons), sum(beacons) FILTER (reason != '{Outcome.COUNTED}')
             FROM beacons WHERE tour != '' GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT $top""",
        bounds | {"top": TOP},
    ).fetchall()
    return {
        "from": period.first.isoformat(),
        "to": period.last.isoformat(),
        "totals": empty | {r: sum(day.get(r, 0) for day in by_day.values()) for r in empty},
        "series": [
            {"start": f"{day}T00:00:00Z"} | empty | by_day.get(day, {})
            for day in (start.strftime("%Y-%m-%d") for start in period.buckets())
        ],
        "top_sources": [
            {
                "ip_hash": ip,
                "events": int(events),
                "throttled": int(throttled or 0),
                "visitors": int(visitors),
            }
            for ip, events, throttled, visitors in sources
        ],
        "top_tours": [
            {"tour": tour, "events": int(events), "not_counted": int(not_counted or 0)}
            for tour, events, not_counted in tours
        ],
        "alerts": alerts(cursor, period),
    }
