"""One batch of accepted beacons into DuckDB, in one transaction.

Counted beacons become rows of ``events``; the others become increments of the
``drops`` counters. Rows travel as one Arrow table, so a batch of 1,000 costs
one insert, not 1,000.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

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
                cursor.register("batch_events", _table(EVENTS, rows))
                cursor.execute(
                    "INSERT INTO events SELECT ts, tour, kind, scene, visitor::UUID, ip_hash, "
                    "device, browser, os FROM batch_events"
                )
                cursor.unregister("batch_events")
            if drops:
                table = _table(DROPS, [(*key, count) for key, count in drops.items()])
                cursor.register("batch_drops", table)
                cursor.execute(
                    "INSERT INTO drops SELECT * FROM batch_drops ON CONFLICT DO UPDATE "
                    "SET beacons = drops.beacons + excluded.beacons"
                )
                cursor.unregister("batch_drops")
            cursor.commit()
        except BaseException:
            cursor.rollback()
            raise
