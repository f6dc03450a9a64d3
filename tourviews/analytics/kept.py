"""What was read about completed days, kept while those days cannot change.

A dashboard asks for the same days again and again: a month of them, and the month
before for comparison. The figures of a rolled-up day change only when it is rolled
up again, erased from or purged, or its tour is deleted, and each of those replaces
the ``CHANGED`` token (``tourviews.storage.database.mark_changed``) in the same transaction.
So a read that touches only rolled-up days is kept while the token stays, and a new
token forgets everything kept (an erased visitor's sketches with it). Reads that
touch a day not rolled up (today) are not kept.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import date
from typing import Any, TypeVar

import duckdb

from tourviews.storage.database import CHANGED, one

T = TypeVar("T")

BYTES = 64 * 2**20  # kept at most (as ``weight`` counts them), the least recently read forgotten
ROW = 100  # bytes counted per row besides its strings and sketches

_kept: dict[Hashable, tuple[Any, int]] = {}
_size = 0
_token: str | None = None  # the token of what is kept: a new one forgets it all
_lock = threading.Lock()
# The standing for the read in progress (``reading``): one look-up per document, not
# one per kept part of it.
_read: ContextVar[tuple[str | None, date | None] | None] = ContextVar("read", default=None)


def standing(cursor: duckdb.DuckDBPyConnection) -> tuple[str | None, date | None]:
    """The token of the completed days' figures, and the last rolled-up day."""
    row = one(
        cursor,
        "SELECT (SELECT value FROM meta WHERE key = ?), (SELECT max(day) FROM rolled_days)",
        [CHANGED],
    )
    return (row[0], row[1]) if row else (None, None)


@contextmanager
def reading(cursor: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """One read made of many kept parts: the standing is looked up once, at its start.

    Days rolled up or changed while it runs are then read as they were at its start,
    or afresh; neither is kept under the new token.
    """
    if _read.get() is not None:  # a part of a read already going
        yield
        return
    started = _read.set(standing(cursor))
    try:
        yield
    finally:
        _read.reset(started)


def kept(
    cursor: duckdb.DuckDBPyConnection,
    key: Hashable,
    through: date,
    compute: Callable[[], T],
    size: Callable[[T], int] = lambda _: 1_000,
) -> T:
    """``compute()``, kept under ``key`` while the days up to ``through`` cannot change.

    ``size``: about how many bytes the value holds. What it returns must not be
    changed by the caller: the next caller gets it too.
    """
    global _size, _token
    token, rolled = _read.get() or standing(cursor)
    if token is None or rolled is None or through > rolled:
        return compute()
    with _lock:
        if token != _token:  # what is kept is stale: gone, erased visitors' sketches with it
            _kept.clear()
            _size, _token = 0, token
        found = _kept.pop(key, None)
        if found is not None:
            _kept[key] = found  # the most recently read last
            return found[0]  # type: ignore[no-any-return]
    value = compute()
    weight = size(value)
    if weight > BYTES // 16:  # one read would push out most of the others
        return value
    with _lock:
        if token == _token and key not in _kept:  # not if the token changed meanwhile
            _kept[key] = (value, weight)
            _size += weight
            while _size > BYTES:
                _, gone = _kept.pop(next(iter(_kept)))
                _size -= gone
    return value


def rows(
    cursor: duckdb.DuckDBPyConnection, sql: str, parameters: dict[str, Any], through: date
) -> tuple[tuple[Any, ...], ...]:
    """The rows of ``sql``, kept while the days up to ``through`` cannot change."""
    key = (sql, tuple(sorted((name, _frozen(value)) for name, value in parameters.items())))
    return kept(cursor, key, through, lambda: tuple(cursor.execute(sql, parameters).fetchall()),
                weight)  # fmt: skip


def weight(rows: tuple[tuple[Any, ...], ...]) -> int:
    """About how many bytes ``rows`` hold: their strings and sketches, and ``ROW`` each."""
    return sum(
        ROW + sum(len(value) for value in row if isinstance(value, str | bytes)) for row in rows
    )


def _frozen(value: Any) -> Hashable:
    return tuple(value) if isinstance(value, list) else value


def clear() -> None:
    """Forget everything kept (the benchmark's first reads)."""
    global _size
    with _lock:
        _kept.clear()
        _size = 0
