"""What was read about completed days, kept while those days cannot change.

A dashboard asks for the same days again and again: a month of them, and the month
before for comparison. The figures of a rolled-up day change only when it is rolled
up again, erased from or purged, and each of those replaces the ``CHANGED`` token
(``storage.database.mark_changed``) in the same transaction. So a read that touches
only rolled-up days is kept under the token it was made with, and a changed token
never finds it again. Reads that touch a day not rolled up (today) are not kept.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from datetime import date
from typing import Any, TypeVar

import duckdb

from storage.database import CHANGED, one

T = TypeVar("T")

ROWS = 250_000  # rows (or documents) kept at most, the oldest forgotten first: ~30 MiB

_kept: dict[Hashable, tuple[Any, int]] = {}
_size = 0
_lock = threading.Lock()


def standing(cursor: duckdb.DuckDBPyConnection) -> tuple[str | None, date | None]:
    """The token of the completed days' figures, and the last rolled-up day."""
    row = one(
        cursor,
        "SELECT (SELECT value FROM meta WHERE key = ?), (SELECT max(day) FROM rolled_days)",
        [CHANGED],
    )
    return (row[0], row[1]) if row else (None, None)


def kept(
    cursor: duckdb.DuckDBPyConnection,
    key: Hashable,
    through: date,
    compute: Callable[[], T],
    size: Callable[[T], int] = lambda _: 1,
) -> T:
    """``compute()``, kept under ``key`` while the days up to ``through`` cannot change.

    What it returns must not be changed by the caller: the next caller gets it too.
    """
    global _size
    token, rolled = standing(cursor)
    if token is None or rolled is None or through > rolled:
        return compute()
    full = (token, key)
    with _lock:
        found = _kept.get(full)
    if found is not None:
        return found[0]  # type: ignore[no-any-return]
    value = compute()
    weight = max(1, size(value))
    if weight > ROWS // 16:  # one read would push out most of the others
        return value
    with _lock:
        if full not in _kept:
            _kept[full] = (value, weight)
            _size += weight
            while _size > ROWS:
                _, gone = _kept.pop(next(iter(_kept)))
                _size -= gone
    return value


def rows(
    cursor: duckdb.DuckDBPyConnection, sql: str, parameters: dict[str, Any], through: date
) -> list[tuple[Any, ...]]:
    """The rows of ``sql``, kept while the days up to ``through`` cannot change."""
    key = (sql, tuple(sorted((name, _frozen(value)) for name, value in parameters.items())))
    return kept(cursor, key, through, lambda: cursor.execute(sql, parameters).fetchall(), len)


def _frozen(value: Any) -> Hashable:
    return tuple(value) if isinstance(value, list) else value


def clear() -> None:
    """Forget everything kept (the benchmark's first reads)."""
    global _size
    with _lock:
        _kept.clear()
        _size = 0
