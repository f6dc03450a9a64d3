"""The stats document of one tour: totals, a zero-filled series, breakdowns.

Every number is counted from the tour's counted events in one scan: ``views`` are
counted ``view`` events, ``visitors`` are distinct visitor IDs among them (over the
whole range, never a sum of daily counts), and the scene breakdown counts
``scene`` events per scene.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import duckdb

from analytics.period import Period

DIMENSIONS = ("device", "browser", "os", "scene")

# One scan of the tour's events in the period; each part of the document is one
# grouping of it. Rows: (part, key, views, visitors).
QUERY = """
WITH hits AS MATERIALIZED (
    SELECT ts, kind, scene, visitor, device, browser, os
    FROM events WHERE tour = $tour AND ts >= $start AND ts < $end
)
SELECT 'total', '', count(*), count(DISTINCT visitor) FROM hits WHERE kind = 'view'
UNION ALL
SELECT 'series', strftime(date_trunc($interval, ts), '%Y-%m-%dT%H:%M:%SZ'),
       count(*), count(DISTINCT visitor)
FROM hits WHERE kind = 'view' GROUP BY 2
UNION ALL
SELECT 'device', device, count(*), count(DISTINCT visitor) FROM hits WHERE kind = 'view' GROUP BY 2
UNION ALL
SELECT 'browser', browser, count(*), count(DISTINCT visitor) FROM hits WHERE kind = 'view'
GROUP BY 2
UNION ALL
SELECT 'os', os, count(*), count(DISTINCT visitor) FROM hits WHERE kind = 'view' GROUP BY 2
UNION ALL
SELECT 'scene', scene, count(*), count(DISTINCT visitor) FROM hits WHERE kind = 'scene' GROUP BY 2
"""


def tour_stats(cursor: duckdb.DuckDBPyConnection, tour: str, period: Period) -> dict[str, Any]:
    """The contract's stats document for ``tour`` over ``period``."""
    rows = cursor.execute(
        QUERY,
        {
            "tour": tour,
            "start": period.start.replace(tzinfo=None),
            "end": period.end.replace(tzinfo=None),
            "interval": period.interval,
        },
    ).fetchall()
    parts: dict[str, dict[str, tuple[int, int]]] = defaultdict(dict)
    for part, key, views, visitors in rows:
        parts[part][key] = (views, visitors)
    views, visitors = parts["total"].get("", (0, 0))
    series = []
    for start in period.buckets():
        key = start.strftime("%Y-%m-%dT%H:%M:%SZ")
        bucket_views, bucket_visitors = parts["series"].get(key, (0, 0))
        series.append({"start": key, "views": bucket_views, "visitors": bucket_visitors})
    breakdown = {
        dimension: [
            {"key": key, "views": v, "visitors": u}
            for key, (v, u) in sorted(parts[dimension].items(), key=lambda kv: (-kv[1][0], kv[0]))
        ]
        for dimension in DIMENSIONS
    }
    return {
        "tour": tour,
        "from": period.first.isoformat(),
        "to": period.last.isoformat(),
        "interval": period.interval,
        "totals": {"views": views, "visitors": visitors, "visitors_exact": True},
        "series": series,
        "breakdown": breakdown,
    }
