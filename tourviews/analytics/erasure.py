"""Erasure of one visitor (withdrawal of consent): their events, and what was made of them.

The raw events go, and every rolled-up day that held them is rolled up again without
them. Days past raw retention hold no visitor ID at all: their sketches keep only a
few bits derived from hashes of all visitors, which cannot be traced to one.
"""

from __future__ import annotations

import duckdb

from tourviews.analytics.rollup import replace_day
from tourviews.storage.database import mark_changed, mark_erased, one, transaction
from tourviews.storage.errors import InvalidValue
from tourviews.storage.registry import UUID


def forget(cursor: duckdb.DuckDBPyConnection, visitor: str) -> int:
    """Erase every stored event of ``visitor`` and re-make the rollups that counted them."""
    if not UUID.fullmatch(visitor):
        raise InvalidValue("visitor", "visitor must be a UUID in 8-4-4-4-12 hex form")
    visitor = visitor.lower()
    with transaction(cursor):
        days = [
            day
            for (day,) in cursor.execute(
                "SELECT DISTINCT ts::DATE AS day FROM events WHERE visitor = ?::UUID "
                "AND day IN (SELECT day FROM rolled_days)",
                [visitor],
            ).fetchall()
        ]
        row = one(cursor, "DELETE FROM events WHERE visitor = ?::UUID", [visitor])
        if row and row[0]:
            mark_erased(cursor)
            mark_changed(cursor)
        # In the same transaction: no reader sees a day without its aggregates.
        for day in days:
            replace_day(cursor, day)
    return int(row[0]) if row else 0
