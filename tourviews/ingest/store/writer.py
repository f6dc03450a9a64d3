"""One batch of accepted beacons into DuckDB, in one transaction.

Counted beacons become rows of ``events``; the others become counter rows of
``drop_log`` (appended, folded into ``drops`` by housekeeping). Each table gets
one insert per batch, so a batch of 1,000 costs one statement, not 1,000.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Mapping, Sequence
from datetime import datetime

import duckdb
import pyarrow as pa

from tourviews.storage.database import Database, transaction, write_meta
from tourviews.storage.event import Event, arrow_schema

# (hour, tour, ip_hash, reason)
DropKey = tuple[datetime, str, bytes, str]

EVENTS = arrow_schema()
SMALL_BATCH = 256  # rows: fewer go through an appender, more as an Arrow table
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
    """Writes batches through the cursor of the calling thread (the committer's writer)."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._appenders = threading.local()  # table -> appender of this thread's cursor
        self._made_on = threading.local()  # the cursor those appenders belong to

    def write(
        self,
        rows: Sequence[Event],
        drops: Mapping[DropKey, int],
        marker: tuple[str, str] | None = None,
    ) -> None:
        """Commit ``rows`` and ``drops`` together (fsynced), or raise and keep nothing.

        ``marker``: a (key, value) of ``meta`` written in the same transaction, such as
        the last stream entry the batch holds (``tourviews.ingest.store.drain``).
        """
        counts = [(*key, count) for key, count in drops.items()]
        inserts = [(table, schema, batch) for table, schema, batch in
                   (("events", EVENTS, rows), ("drop_log", DROPS, counts)) if batch]  # fmt: skip
        with self._db.using() as cursor:
            if getattr(self._made_on, "cursor", None) is not cursor:  # compaction reopened
                vars(self._appenders).clear()
                self._made_on.cursor = cursor
            # One insert is a transaction of its own: BEGIN and COMMIT would only add cost.
            statements = len(inserts) + (marker is not None)
            together = transaction(cursor) if statements > 1 else contextlib.nullcontext()
            try:
                with together:
                    for table, schema, batch in inserts:
                        self._insert(cursor, table, schema, batch)
                    if marker is not None:
                        write_meta(cursor, *marker)
            except BaseException:
                for appender in vars(self._appenders).values():
                    appender.clear()  # rows buffered before the failure must not go out later
                raise

    def _insert(
        self,
        cursor: duckdb.DuckDBPyConnection,
        table: str,
        schema: pa.Schema,
        rows: Sequence[tuple[object, ...]],
    ) -> None:
        """Small batches through an appender, large ones as one Arrow table.

        Both cost DuckDB a statement. An appender converts its rows in one call, while
        an Arrow scan calls back into Python as it runs: under load, each callback
        waits for the event loop to let go of the GIL. Past a few hundred rows the
        Arrow table's columnar conversion wins.
        """
        if len(rows) >= SMALL_BATCH:
            cursor.from_arrow(_table(schema, rows)).insert_into(table)
            return
        appender = getattr(self._appenders, table, None)
        if appender is None:
            appender = cursor.appender(table)
            setattr(self._appenders, table, appender)
        appender.append_rows(rows)
        appender.flush()
