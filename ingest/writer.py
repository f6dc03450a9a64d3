"""One batch of accepted beacons into DuckDB, in one transaction.

Counted beacons become rows of ``events``; the others become counter rows of
``drop_log`` (appended, folded into ``drops`` by housekeeping). Rows travel as
one Arrow table per table, so a batch of 1,000 costs one insert, not 1,000.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

import duckdb
import pyarrow as pa

from storage.database import Database

# (ts, tour, kind, scene, visitor, ip_hash, device, browser, os)
EventRow = tuple[datetime, str, str, str | None, str, bytes, str, str, str]
# (hour, tour, ip_hash, reason)
DropKey = tuple[datetime, str, bytes, str]

EVENTS = pa.schema(
    [
        ("ts", pa.timestamp("us")),
        ("tour", pa.string()),
        ("kind", pa.string()),
        ("scene", pa.string()),
        ("visitor", pa.string()),
        ("ip_hash", pa.binary()),
        ("device", pa.string()),
        ("browser", pa.string()),
        ("os", pa.string()),
    ]
)
DROPS = pa.schema(
    [
        ("hour", pa.timestamp("us")),
        ("tour", pa.string()),
        ("ip_hash", pa.binary()),
        ("reason", pa.string()),
        ("beacons", pa.int64()),
    ]
)


def _table(schema: pa.Schema, rows: Sequence[tuple[object, ...]]) -> pa.Table:
    columns = list(zip(*rows, strict=True))
    return pa.Table.from_arrays(
        [pa.array(column, type=field.type) for column, field in zip(columns, schema, strict=True)],
        schema=schema,
    )


class EventWriter:
    def __init__(self, db: Database) -> None:
        self._db = db

    def write(self, rows: Sequence[EventRow], drops: Mapping[DropKey, int]) -> None:
        """Commit ``rows`` and ``drops`` together (fsynced), or raise and keep nothing."""
        cursor = self._db.cursor()
        cursor.begin()
        try:
            if rows:
                cursor.from_arrow(_table(EVENTS, rows)).insert_into("events")
            if drops:
                counts = [(*key, count) for key, count in drops.items()]
                cursor.from_arrow(_table(DROPS, counts)).insert_into("drop_log")
            cursor.commit()
        except BaseException:
            cursor.rollback()
            raise


def fold_drop_log(cursor: duckdb.DuckDBPyConnection) -> None:
    """Fold the appended drop counters into one row per key of ``drops``.

    Rows the writer appends meanwhile are not in this transaction's snapshot: they
    stay in the log for the next fold.
    """
    cursor.begin()
    try:
        cursor.execute(
            "INSERT INTO drops SELECT hour, tour, ip_hash, reason, sum(beacons) FROM drop_log "
            "GROUP BY ALL ON CONFLICT DO UPDATE SET beacons = drops.beacons + excluded.beacons"
        )
        cursor.execute("DELETE FROM drop_log")
        cursor.commit()
    except BaseException:
        cursor.rollback()
        raise
