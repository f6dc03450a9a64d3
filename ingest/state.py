"""The dedup, rotation and scene state rebuilt from the counted events after a restart."""

from __future__ import annotations

from datetime import datetime, timedelta

import duckdb

from ingest.dedup import Deduplicator
from ingest.rotation import RotationGuard
from ingest.scenes import SceneBound
from storage.database import Database


def restore(
    db: Database,
    dedup: Deduplicator,
    rotation: RotationGuard,
    scenes: SceneBound,
    now: datetime,
    moment: float,
) -> int:
    """Remember every key counted within the windows before ``now``; returns how many.

    Stored times are wall-clock; the windows run on the monotonic clock, whose reading
    ``moment`` is taken at ``now``. The rotation guard is rebuilt by stored IP hash: for
    IPv6 that is each address, not its network, so for one window after a restart a
    network's visitors from before it are not added to its count.
    """
    since = (now - timedelta(seconds=max(dedup.window, rotation.window))).replace(tzinfo=None)
    offset = moment - now.timestamp()  # wall seconds to monotonic seconds
    with db.using() as cursor:
        return _restore(cursor, dedup, rotation, scenes, since, offset, moment)


def _restore(
    cursor: duckdb.DuckDBPyConnection,
    dedup: Deduplicator,
    rotation: RotationGuard,
    scenes: SceneBound,
    since: datetime,
    offset: float,
    moment: float,
) -> int:
    keys = cursor.execute(
        "SELECT tour, CASE WHEN kind = 'scene' THEN scene END, visitor::VARCHAR, "
        "epoch(max(ts)) AS last FROM events WHERE ts >= ? GROUP BY ALL ORDER BY last",
        [since],
    ).fetchall()
    for tour, scene, visitor, last in keys:
        dedup.remember((tour, scene, visitor), min(last + offset, moment))
    sources = cursor.execute(
        "SELECT ip_hash, tour, visitor::VARCHAR, epoch(max(ts)) AS last FROM events "
        "WHERE ts >= ? GROUP BY ALL ORDER BY last",
        [since],
    ).fetchall()
    for ip_hash, tour, visitor, last in sources:
        rotation.is_rotating(bytes(ip_hash), tour, visitor, min(last + offset, moment))
    named = cursor.execute(
        "SELECT tour, scene FROM ("
        "SELECT tour, scene, min(ts)::DATE AS first FROM events WHERE scene IS NOT NULL "
        "GROUP BY ALL UNION ALL SELECT tour, key, min(day) FROM rollups "
        "WHERE dimension = 'scene' GROUP BY ALL) GROUP BY ALL ORDER BY min(first), 1, 2"
    ).fetchall()  # the names in the order they were first counted, as the bound admits them
    scenes.restore(named)
    return len(keys)
