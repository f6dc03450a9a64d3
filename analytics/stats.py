"""The stats document of one tour: totals, a zero-filled series, breakdowns.

Every number is counted from the tour's counted events in one scan: ``views`` are
counted ``view`` events, ``visitors`` are distinct visitor IDs among them (over the
whole range, never a sum of daily counts), and the scene breakdown counts
``scene`` events per scene.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

import duckdb

from analytics.period import Period

DIMENSIONS = ("device", "browser", "os", "scene")

# (part of the document, key expression, event kind counted)
BREAKDOWNS = (
    ("device", "device", "view"),
    ("browser", "browser", "view"),
    ("os", "os", "view"),
    ("scene", "scene", "scene"),
)


def groupings(parts: Iterable[tuple[str, str, str]], by: str = "") -> str:
    """One grouping of ``hits`` per part, unioned: rows of (by..., part, key, views, visitors)."""
    columns = f"{by}, " if by else ""
    return "\nUNION ALL\n".join(
        f"SELECT {columns}'{part}', {key}, count(*), count(DISTINCT visitor) "
        f"FROM hits WHERE kind = '{kind}' GROUP BY ALL"
        for part, key, kind in parts
    )


# One scan of the tour's events in the period; each part of the document is one
# grouping of it.
QUERY = f"""
WITH hits AS MATERIALIZED (
    SELECT ts, kind, scene, visitor, device, browser, os
    FROM events WHERE tour = $tour AND ts >= $start AND ts < $end
)
{groupings([
    ("total", "''", "view"),
    ("series", "strftime(date_trunc($interval, ts), '%Y-%m-%dT%H:%M:%SZ')", "view"),
    *BREAKDOWNS,
])}
"""  # fmt: skip


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
