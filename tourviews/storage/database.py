"""The DuckDB file: opening it, its schema, one cursor per thread.

One process writes a DuckDB file and, while it does, no other process can open it
(even read-only). The service therefore owns the file for as long as it runs, and
the CLI goes through the service's HTTP API when one is running (see
``tourviews.control``). Inside the process, every thread takes its own cursor: the
writer commits batches while queries read a consistent snapshot (MVCC).

DuckDB does not overwrite what it deletes: an erased visitor's bytes stay in the file
until they are rewritten. ``Database.compact`` copies the live rows into a fresh file
and puts it in the old one's place; every use of the database goes through
``Database.using``, which compaction waits out and holds back while it runs.
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb

from tourviews.storage.errors import StorageBusy, StorageError
from tourviews.storage.event import CREATE_TABLE as EVENTS
from tourviews.storage.migrations import migrate

DATABASE_FILE = "tourviews.duckdb"
REOPEN_TRIES = 5
COMPACTING = "tourviews.duckdb.compacting"  # the fresh copy, until it replaces the file
# meta key, set in the transaction that deletes personal data (erasure, retention):
# the deleted rows' bytes are still in the file until a compaction rewrites it.
ERASED = "erased_since_compaction"
# meta key: a token replaced whenever the figures of completed days may have changed
CHANGED = "changed"

# Only what the contract allows is stored: no raw IP address, no raw user-agent.
SCHEMA = f"""
CREATE TABLE IF NOT EXISTS meta (
    key VARCHAR PRIMARY KEY,
    value VARCHAR NOT NULL
);
CREATE TABLE IF NOT EXISTS tours (
    tour VARCHAR PRIMARY KEY,
    org VARCHAR NOT NULL,
    origins VARCHAR[] NOT NULL,
    created TIMESTAMP NOT NULL,
    scenes VARCHAR[],                  -- declared scenes; NULL: any, up to --max-scenes
    public_counter BOOLEAN DEFAULT false, -- its view count is readable without a token
    timezone VARCHAR DEFAULT 'UTC',    -- IANA name: the zone of the owner's days
    goals VARCHAR[]                    -- scene:NAME or action:NAME, in the owner's order
);
CREATE TABLE IF NOT EXISTS tour_reports (
    tour VARCHAR PRIMARY KEY,
    recipients VARCHAR[] NOT NULL      -- where the tour's own weekly report goes
);
CREATE TABLE IF NOT EXISTS tokens (
    token_hash BLOB PRIMARY KEY,       -- SHA-256 of the token, never the token
    org VARCHAR NOT NULL,
    admin BOOLEAN NOT NULL,
    created TIMESTAMP NOT NULL,
    tour VARCHAR,                      -- a token for one tour reads that tour alone
    last_used TIMESTAMP
);
-- One row per counted beacon (raw events, kept --raw-retention-days): its columns
-- are the fields of tourviews.storage.event.Event.
{EVENTS}
-- Beacons that were not counted, as counters: an attack cannot amplify storage.
-- The writer appends one row per key per commit to drop_log (an append is far
-- cheaper than an upsert on the hot path); housekeeping folds drop_log into drops
-- every minute. Readers sum over drop_counters, which is both.
CREATE TABLE IF NOT EXISTS drops (
    hour TIMESTAMP NOT NULL,
    tour VARCHAR NOT NULL,             -- '' when the beacon named no valid tour
    ip_hash BLOB NOT NULL,
    reason VARCHAR NOT NULL,           -- an Outcome (storage.outcomes) other than counted
    beacons BIGINT NOT NULL,
    PRIMARY KEY (hour, tour, ip_hash, reason)
);
CREATE TABLE IF NOT EXISTS drop_log (
    hour TIMESTAMP NOT NULL,
    tour VARCHAR NOT NULL,
    ip_hash BLOB NOT NULL,
    reason VARCHAR NOT NULL,
    beacons BIGINT NOT NULL
);
CREATE VIEW IF NOT EXISTS drop_counters AS
    SELECT * FROM drops UNION ALL SELECT * FROM drop_log;
-- Per-day aggregates of counted events, written once a UTC day is complete; they
-- outlive the raw events. dimension: total, hour, or a breakdown's name (the
-- registry: tourviews.analytics.breakdowns).
CREATE TABLE IF NOT EXISTS rollups (
    tour VARCHAR NOT NULL,
    day DATE NOT NULL,
    dimension VARCHAR NOT NULL,
    key VARCHAR NOT NULL,              -- '' for total, '00'..'23' for hour
    views BIGINT NOT NULL,
    visitors BIGINT NOT NULL,          -- exact distinct visitors of that day and key
    sketch BLOB,                       -- mergeable sketch of those visitors (owner API)
    PRIMARY KEY (tour, day, dimension, key)
);
-- Per 15-minute UTC bucket (made with the day's rollups): any time zone's days and
-- hours are whole buckets, so their counts are sums of them, beyond raw retention too.
-- dimension: total (views), visits (that began in it), engaged (their seconds). No
-- sketch of visitors: one this fine would tell when a visitor came.
CREATE TABLE IF NOT EXISTS quarters (
    tour VARCHAR NOT NULL,
    start TIMESTAMP NOT NULL,
    dimension VARCHAR NOT NULL,
    key VARCHAR NOT NULL,
    amount BIGINT NOT NULL,
    sketch BLOB,
    PRIMARY KEY (tour, start, dimension, key)
);
CREATE TABLE IF NOT EXISTS rolled_days (
    day DATE PRIMARY KEY
);
-- For each rolled-up day whose raw events are kept: its visitors of each dimension and
-- key (not hours), and their views, by the previous day they were seen with that key
-- (NULL: not among the raw events), so that the distinct visitors of a period are a
-- sum. Deleted with the day's raw events. dimension: total, or a breakdown's name.
CREATE TABLE IF NOT EXISTS recency (
    tour VARCHAR NOT NULL,
    day DATE NOT NULL,
    dimension VARCHAR NOT NULL,
    key VARCHAR NOT NULL,
    previous DATE,
    visitors BIGINT NOT NULL,
    views BIGINT NOT NULL
);
-- The visitors with a view of each tour and rolled-up day whose raw events are kept:
-- whether today's visitors came earlier in a period, for many tours at once, without
-- reading the period's raw events. Deleted with the day's raw events.
CREATE TABLE IF NOT EXISTS visitor_days (
    tour VARCHAR NOT NULL,
    day DATE NOT NULL,
    visitor UUID NOT NULL
);
"""

_LOCK_HOLDER = re.compile(r"\(PID (\d+)\)")


class _Gate:
    """Many users at once, or one compaction alone; a thread may nest its uses.

    A compaction waiting for its turn holds new uses back, so it is not starved.
    """

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._users = 0
        self._compacting = False
        self._waiting = 0
        self._depth = threading.local()

    @contextmanager
    def use(self) -> Iterator[None]:
        depth = getattr(self._depth, "n", 0)
        if depth == 0:
            with self._condition:
                while self._compacting or self._waiting:
                    self._condition.wait()
                self._users += 1
        self._depth.n = depth + 1
        try:
            yield
        finally:
            self._depth.n = depth
            if depth == 0:
                with self._condition:
                    self._users -= 1
                    self._condition.notify_all()

    @contextmanager
    def alone(self) -> Iterator[None]:
        if getattr(self._depth, "n", 0):
            raise RuntimeError("a thread that uses the database cannot compact it")
        with self._condition:
            self._waiting += 1
            try:
                while self._compacting or self._users:
                    self._condition.wait()
            finally:
                self._waiting -= 1
            self._compacting = True
        try:
            yield
        finally:
            with self._condition:
                self._compacting = False
                self._condition.notify_all()


class Database:
    """The open DuckDB file of a data directory."""

    def __init__(self, connection: duckdb.DuckDBPyConnection, path: Path) -> None:
        # called after each compaction: what else holds the deleted data rewrites too
        self.after_compaction: list[Callable[[], None]] = []
        self.path = path
        self._connection = connection
        self._local = threading.local()
        self._lock = threading.Lock()
        # Held by whatever deletes or rewrites rows (housekeeping, erasure, purge): two of
        # them on the same rows would make DuckDB abort one. The writer only appends.
        self.maintenance = threading.Lock()
        self._cursors: list[duckdb.DuckDBPyConnection] = []
        self._gate = _Gate()
        self.generation = 0  # how many times the file was replaced by compaction

    @contextmanager
    def using(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """This thread's cursor, for a use that no compaction interrupts."""
        with self._gate.use():
            yield self.cursor()

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """This thread's own cursor on the database (inside ``using`` if a compaction may run)."""
        cursor: duckdb.DuckDBPyConnection | None = getattr(self._local, "cursor", None)
        if cursor is None or self._local.generation != self.generation:
            cursor = self._connection.cursor()
            self._local.cursor, self._local.generation = cursor, self.generation
            with self._lock:
                self._cursors.append(cursor)
        return cursor

    def compact(self) -> tuple[int, int]:
        """Rewrite the file with its live rows only; (bytes before with the WAL, bytes after).

        Deleted rows' bytes are gone from the data directory afterwards: the fresh file
        holds only live rows, the old one is replaced, and its WAL was folded in first.
        A crash before the replacement leaves the old file (the copy is removed when the
        file is next opened); after it, the new one. Either opens with every committed
        row.
        """
        fresh = self.path.with_name(COMPACTING)
        with self.maintenance, self._gate.alone():
            before = sum(p.stat().st_size for p in (self.path, _wal(self.path)) if p.exists())
            _remove(fresh)
            self._connection.execute("CHECKPOINT")
            try:
                quoted = str(fresh).replace("'", "''")
                self._connection.execute(f"ATTACH '{quoted}' AS fresh")
                (name,) = one(self._connection, "SELECT current_database()") or ("",)
                self._connection.execute(f'COPY FROM DATABASE "{name}" TO fresh')
                self._connection.execute("DELETE FROM fresh.meta WHERE key = ?", [ERASED])
                self._connection.execute("DETACH fresh")
            except BaseException:
                with contextlib.suppress(duckdb.Error):
                    self._connection.execute("DETACH fresh")
                _remove(fresh)
                raise
            try:
                self._close_connection()
                if _wal(self.path).exists() or _wal(fresh).exists():
                    # a write after the checkpoint, or a copy not folded in: keep the old file
                    raise StorageError("the database changed during compaction")
                fsync_path(fresh)
                os.replace(fresh, self.path)
                fsync_path(self.path.parent)
            finally:
                _remove(fresh)
                # Threads take new cursors from here on, even if the reopen below fails:
                # one kept from the closed connection would fail every use.
                self.generation += 1
                self._connection = _reopen(self.path)
            after = self.path.stat().st_size
        for compacted in self.after_compaction:
            compacted()
        return before, after

    def _close_cursors(self) -> None:
        with self._lock:
            for cursor in self._cursors:
                cursor.close()
            self._cursors.clear()

    def _close_connection(self) -> None:
        self._close_cursors()
        self._connection.close()

    def close(self) -> None:
        """Checkpoint and close; the WAL is folded into the file.

        It waits for a purge or compaction that runs (on a housekeeping thread the
        shutdown does not stop) instead of closing the connection under it.
        """
        with self.maintenance, self._gate.alone():
            self._close_cursors()
            try:
                self._connection.execute("CHECKPOINT")
            except duckdb.Error:
                pass  # closed already, or failing storage: DuckDB replays the WAL on next open
            finally:
                self._connection.close()


def _reopen(path: Path) -> duckdb.DuckDBPyConnection:
    """Open the file again after a compaction; a few tries before giving up."""
    for attempt in range(REOPEN_TRIES):
        try:
            return _connect(path)
        except duckdb.Error:
            if attempt == REOPEN_TRIES - 1:
                raise
            time.sleep(0.1 * (attempt + 1))
    raise AssertionError("unreachable")


def _wal(path: Path) -> Path:
    return path.with_name(path.name + ".wal")


def _remove(path: Path) -> None:
    for leftover in (path, _wal(path)):
        leftover.unlink(missing_ok=True)


def fsync_path(path: Path) -> None:
    """fsync a file, or a directory (what makes a rename or a new name in it durable)."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def open_database(data_dir: Path) -> Database:
    """Open (creating if needed) the DuckDB file of ``data_dir`` and bring its schema up.

    A new file gets ``SCHEMA``; an older one the migrations it lacks
    (``tourviews.storage.migrations``, which says how to change the schema).
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / DATABASE_FILE
    try:
        connection = _connect(path)
    except duckdb.IOException as exc:
        message = str(exc)
        if "lock" in message.lower():
            holder = _LOCK_HOLDER.search(message)
            who = f"process {holder.group(1)}" if holder else "another process"
            raise StorageBusy(
                f"the data directory {data_dir} is in use by {who}: stop it, or choose "
                "another with --data"
            ) from None
        raise StorageError(f"cannot open {path}: {message.splitlines()[0]}") from None
    except duckdb.Error as exc:
        raise StorageError(f"cannot open {path}: {str(exc).splitlines()[0]}") from None
    # A compaction's copy that did not replace the file: the file is whole without it.
    _remove(path.with_name(COMPACTING))
    try:
        migrate(connection, SCHEMA, path)
    except StorageError:
        connection.close()  # a refused file is left unlocked, for the version that reads it
        raise
    connection.execute(
        "INSERT OR IGNORE INTO meta VALUES (?, gen_random_uuid()::VARCHAR)", [CHANGED]
    )
    return Database(connection, path)


def _connect(path: Path) -> duckdb.DuckDBPyConnection:
    return duckdb.connect(str(path))


def one(
    cursor: duckdb.DuckDBPyConnection, sql: str, parameters: object = None
) -> tuple[Any, ...] | None:
    """The first row of a statement that yields at most a few, or None; its result read to the end.

    DuckDB refuses appenders, Arrow inserts and registered tables on a connection
    whose last result was not read to the end, and ``fetchone()`` leaves it so.
    Every read of one row goes through here (a test keeps ``fetchone`` out).
    """
    rows = cursor.execute(sql, parameters).fetchall()
    return rows[0] if rows else None


def mark_changed(cursor: duckdb.DuckDBPyConnection) -> None:
    """Note that figures of completed days may have changed (rolled up again, erased,
    purged): what was read of them before, and kept (``tourviews.analytics.stats``), is stale."""
    write_meta(cursor, CHANGED, uuid.uuid4().hex)


def mark_erased(cursor: duckdb.DuckDBPyConnection) -> None:
    """Note that rows of personal data were deleted: the file wants compacting."""
    write_meta(cursor, ERASED, "1")


def erased(cursor: duckdb.DuckDBPyConnection) -> bool:
    """Whether personal data was deleted since the last compaction."""
    return read_meta(cursor, ERASED) is not None


def read_meta(cursor: duckdb.DuckDBPyConnection, key: str) -> str | None:
    row = one(cursor, "SELECT value FROM meta WHERE key = ?", [key])
    return None if row is None else str(row[0])


def write_meta(cursor: duckdb.DuckDBPyConnection, key: str, value: str) -> None:
    cursor.execute(
        "INSERT INTO meta VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        [key, value],
    )


@contextmanager
def transaction(cursor: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """A transaction on ``cursor``: committed when the block ends, rolled back if it raises."""
    cursor.begin()
    try:
        yield
        cursor.commit()
    except BaseException:
        cursor.rollback()
        raise
