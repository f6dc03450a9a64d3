"""The dedup and rotation state rebuilt from the counted events after a restart."""

from __future__ import annotations

from datetime import datetime, timedelta

from ingest.dedup import Deduplicator
from ingest.rotation import RotationGuard
from storage.database import Database


def restore(db: Database, dedup: Deduplicator, rotation: RotationGuard, now: datetime) -> int:
    """Remember every key counted within the windows before ``now``; returns how many."""
    since = (now - timedelta(seconds=max(dedup.window, rotation.window))).replace(tzinfo=None)
    cursor = db.cursor()
    keys = cursor.execute(
        "SELECT tour, CASE WHEN kind = 'scene' THEN scene END, visitor::VARCHAR, "
        "epoch(max(ts)) AS last FROM events WHERE ts >= ? GROUP BY ALL ORDER BY last",
        [since],
    ).fetchall()
    for tour, scene, visitor, last in keys:
        dedup.remember((tour, scene, visitor), last)
    sources = cursor.execute(
        "SELECT ip_hash, tour, visitor::VARCHAR, epoch(max(ts)) AS last FROM events "
        "WHERE ts >= ? GROUP BY ALL ORDER BY last",
        [since],
    ).fetchall()
    for ip_hash, tour, visitor, last in sources:
        rotation.is_rotating(bytes(ip_hash), tour, visitor, last)
    return len(keys)
