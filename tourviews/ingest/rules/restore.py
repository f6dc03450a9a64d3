"""The dedup, rotation, scene, action, source and visit state rebuilt from the counted events."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

import duckdb

from tourviews.ingest.rules.dedup import DEDUPLICATED, Deduplicator, dedup_key
from tourviews.ingest.rules.names import SceneBound
from tourviews.ingest.rules.rotation import RotationGuard
from tourviews.ingest.rules.visits import Visits
from tourviews.ingest.sources import BOUNDED, PLACEHOLDERS
from tourviews.storage.database import Database

# Per (tour, visitor) seen today (UTC), its last run of beacons without a 30-minute
# gap (the same cut as tourviews.analytics.visits): a visit goes on if that run began with a view.
LAST_VISITS = """
SELECT tour, visitor::VARCHAR, epoch(max(ts)) AS last FROM (
    SELECT *, sum(starts::INTEGER) OVER (PARTITION BY tour, visitor ORDER BY ts, kind <> 'view'
        ROWS UNBOUNDED PRECEDING) AS run
    FROM (
        SELECT tour, visitor, ts, kind, kind = 'view' OR ts - lag(ts) OVER (
            PARTITION BY tour, visitor ORDER BY ts, kind <> 'view') > $idle AS starts
        FROM events WHERE ts >= $since
    )
)
GROUP BY tour, visitor, run
HAVING first(kind ORDER BY ts, kind <> 'view') = 'view' AND max(ts) >= $live
QUALIFY run = max(run) OVER (PARTITION BY tour, visitor)
ORDER BY last
"""


def restore(
    db: Database,
    dedup: Deduplicator,
    rotation: RotationGuard,
    scenes: SceneBound,
    now: datetime,
    moment: float,
    actions: SceneBound | None = None,
    visits: Visits | None = None,
    sources: Mapping[str, SceneBound] | None = None,
) -> None:
    """Remember every key counted within the windows before ``now``.

    Stored times are wall-clock; the windows run on the monotonic clock, whose reading
    ``moment`` is taken at ``now``. The rotation guard is rebuilt by stored IP hash: for
    IPv6 that is each address, not its network, so for one window after a restart a
    network's visitors from before it are not added to its count.
    """
    since = (now - timedelta(seconds=max(dedup.window, rotation.window))).replace(tzinfo=None)
    offset = moment - now.timestamp()  # wall seconds to monotonic seconds
    with db.using() as cursor:
        _restore(cursor, dedup, rotation, scenes, since, offset, moment)
        if actions is not None:
            actions.restore(counted_names(cursor, "action"))
        for field, bound in (sources or {}).items():
            bound.restore(counted_names(cursor, field))
        if visits is not None:
            naive = now.replace(tzinfo=None)
            midnight = datetime.combine(naive.date(), datetime.min.time())
            rows = cursor.execute(
                LAST_VISITS,
                {"since": midnight, "live": naive - timedelta(seconds=visits.idle),
                 "idle": timedelta(seconds=visits.idle)},
            ).fetchall()  # fmt: skip
            for tour, visitor, last in rows:
                visits.begin(tour, visitor, min(last + offset, moment), naive.toordinal())


def _restore(
    cursor: duckdb.DuckDBPyConnection,
    dedup: Deduplicator,
    rotation: RotationGuard,
    scenes: SceneBound,
    since: datetime,
    offset: float,
    moment: float,
) -> None:
    keys = cursor.execute(
        "SELECT tour, kind, scene, visitor::VARCHAR, epoch(max(ts)) AS last FROM events "
        "WHERE ts >= ? AND kind IN (SELECT unnest(?)) GROUP BY ALL ORDER BY last",
        [since, list(DEDUPLICATED)],
    ).fetchall()
    for tour, kind, scene, visitor, last in keys:  # in time order: the last one stays
        dedup.remember(dedup_key(tour, kind, scene, visitor), min(last + offset, moment))
    sources = cursor.execute(
        "SELECT ip_hash, tour, visitor::VARCHAR, epoch(max(ts)) AS last FROM events "
        "WHERE ts >= ? GROUP BY ALL ORDER BY last",
        [since],
    ).fetchall()
    for ip_hash, tour, visitor, last in sources:
        rotation.is_rotating(bytes(ip_hash), tour, visitor, min(last + offset, moment))
    scenes.restore(counted_names(cursor, "scene"))


def counted_names(cursor: duckdb.DuckDBPyConnection, dimension: str) -> list[tuple[str, str]]:
    """(tour, name) of every scene or action name, or a view's source or UTM value (a
    field of ``BOUNDED``), counted, raw or rolled up, in the order they were first
    counted: the order in which a tour's bound admits them. The keys that stand for no
    value or for those past the bound (``PLACEHOLDERS``) are none."""
    # a column of events, a dimension of rollups
    assert dimension in ("scene", "action", *BOUNDED)
    rows = cursor.execute(
        f"SELECT tour, name FROM (SELECT tour, {dimension} AS name, min(ts)::DATE AS first "
        f"FROM events WHERE {dimension} IS NOT NULL GROUP BY ALL UNION ALL "
        "SELECT tour, key, min(day) FROM rollups WHERE dimension = $dimension GROUP BY ALL) "
        "WHERE name NOT IN (SELECT unnest($placeholders)) "
        "GROUP BY ALL ORDER BY min(first), 1, 2",
        {"dimension": dimension, "placeholders": list(PLACEHOLDERS)},
    ).fetchall()
    return [(str(tour), str(name)) for tour, name in rows]
