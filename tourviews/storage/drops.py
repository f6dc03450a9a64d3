"""The counters of beacons not counted: the writer appends them to ``drop_log`` (an
append is far cheaper than an upsert on the hot path), and housekeeping folds the log
into ``drops``, one row per hour, tour, sender and reason. Readers sum over
``drop_counters``, which is both."""

from __future__ import annotations

import duckdb

from tourviews.storage.database import transaction


def fold_drop_log(cursor: duckdb.DuckDBPyConnection) -> None:
    """Fold the appended drop counters into one row per key of ``drops``.

    Rows the writer appends meanwhile are not in this transaction's snapshot: they
    stay in the log for the next fold.
    """
    with transaction(cursor):
        cursor.execute(
            "INSERT INTO drops SELECT hour, tour, ip_hash, reason, sum(beacons) FROM drop_log "
            "GROUP BY ALL ON CONFLICT DO UPDATE SET beacons = drops.beacons + excluded.beacons"
        )
        cursor.execute("DELETE FROM drop_log")
