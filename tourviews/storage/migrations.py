"""Numbered schema migrations: how a DuckDB file made by an older tourviews comes up to date.

A file keeps the version of its schema in ``meta`` under ``schema_version``. On
opening, each migration numbered above that version is applied in order, in one
transaction together with the new version: a crash leaves the file at the version
before a migration or after it, never between. A new file is made with the current
schema (``tourviews.storage.database.SCHEMA``) at the latest version straight away.
A file at a version above the latest was made by a newer tourviews, whose schema
this one cannot know: it is refused, rather than read wrongly or written to.

Version 1 is every file made before versions were kept: all of them say 1, whatever
tables they hold. Migration 2 is what opening one did then, frozen: the tables of
that time created where missing, and the columns added to them after the first
release.

To change the schema:

1. Append ``Migration(n, (...))`` to ``MIGRATIONS``, ``n`` one above the last: the
   statements that take a file at version ``n - 1`` to ``n`` (moving data is a
   statement too: an ``INSERT ... SELECT``, an ``UPDATE``). They run in one
   transaction with the new version: DDL and DML, which DuckDB rolls back together
   if one of them fails.
2. Change ``SCHEMA`` to the same result, for new files.
   ``tests/storage/test_migrations.py`` checks that a file brought up from version 1
   has every table, column (in order, with its type, default and nullability) and
   constraint that a new file has.
3. Never edit, renumber or remove a migration that has reached main: files out
   there are past it, and would never see the change.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import duckdb

from tourviews.storage.errors import StorageError

VERSION_KEY = "schema_version"  # its row in meta

log = logging.getLogger("tourviews.storage")


@dataclass(frozen=True)
class Migration:
    """The statements that take a file from version ``number - 1`` to ``number``."""

    number: int
    statements: tuple[str, ...]


# Version 2's tables as SCHEMA held them when versions began: a file of version 1 may
# lack any of them (its first open cut short, or made before the table was added).
_VERSION_2_TABLES = (
    "CREATE TABLE IF NOT EXISTS meta (key VARCHAR PRIMARY KEY, value VARCHAR NOT NULL)",
    """CREATE TABLE IF NOT EXISTS tours (
        tour VARCHAR PRIMARY KEY, org VARCHAR NOT NULL, origins VARCHAR[] NOT NULL,
        created TIMESTAMP NOT NULL, scenes VARCHAR[], public_counter BOOLEAN DEFAULT false,
        timezone VARCHAR DEFAULT 'UTC')""",
    """CREATE TABLE IF NOT EXISTS tokens (
        token_hash BLOB PRIMARY KEY, org VARCHAR NOT NULL, admin BOOLEAN NOT NULL,
        created TIMESTAMP NOT NULL, tour VARCHAR, last_used TIMESTAMP)""",
    """CREATE TABLE IF NOT EXISTS events (
        ts TIMESTAMP NOT NULL, tour VARCHAR NOT NULL, kind VARCHAR NOT NULL, scene VARCHAR,
        visitor UUID NOT NULL, ip_hash BLOB NOT NULL, device VARCHAR NOT NULL,
        browser VARCHAR NOT NULL, os VARCHAR NOT NULL, seconds INTEGER, action VARCHAR)""",
    """CREATE TABLE IF NOT EXISTS drops (
        hour TIMESTAMP NOT NULL, tour VARCHAR NOT NULL, ip_hash BLOB NOT NULL,
        reason VARCHAR NOT NULL, beacons BIGINT NOT NULL,
        PRIMARY KEY (hour, tour, ip_hash, reason))""",
    """CREATE TABLE IF NOT EXISTS drop_log (
        hour TIMESTAMP NOT NULL, tour VARCHAR NOT NULL, ip_hash BLOB NOT NULL,
        reason VARCHAR NOT NULL, beacons BIGINT NOT NULL)""",
    """CREATE VIEW IF NOT EXISTS drop_counters AS
        SELECT * FROM drops UNION ALL SELECT * FROM drop_log""",
    """CREATE TABLE IF NOT EXISTS rollups (
        tour VARCHAR NOT NULL, day DATE NOT NULL, dimension VARCHAR NOT NULL,
        key VARCHAR NOT NULL, views BIGINT NOT NULL, visitors BIGINT NOT NULL, sketch BLOB,
        PRIMARY KEY (tour, day, dimension, key))""",
    """CREATE TABLE IF NOT EXISTS quarters (
        tour VARCHAR NOT NULL, start TIMESTAMP NOT NULL, dimension VARCHAR NOT NULL,
        key VARCHAR NOT NULL, amount BIGINT NOT NULL, sketch BLOB,
        PRIMARY KEY (tour, start, dimension, key))""",
    "CREATE TABLE IF NOT EXISTS rolled_days (day DATE PRIMARY KEY)",
    """CREATE TABLE IF NOT EXISTS recency (
        tour VARCHAR NOT NULL, day DATE NOT NULL, dimension VARCHAR NOT NULL,
        key VARCHAR NOT NULL, previous DATE, visitors BIGINT NOT NULL, views BIGINT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS visitor_days (
        tour VARCHAR NOT NULL, day DATE NOT NULL, visitor UUID NOT NULL)""",
)

MIGRATIONS: tuple[Migration, ...] = (
    Migration(2, (
        *_VERSION_2_TABLES,
        # Columns added after the first release: its tables were made without them.
        "ALTER TABLE tours ADD COLUMN IF NOT EXISTS scenes VARCHAR[]",
        "ALTER TABLE tours ADD COLUMN IF NOT EXISTS public_counter BOOLEAN DEFAULT false",
        "ALTER TABLE events ADD COLUMN IF NOT EXISTS seconds INTEGER",
        "ALTER TABLE events ADD COLUMN IF NOT EXISTS action VARCHAR",
        "ALTER TABLE tours ADD COLUMN IF NOT EXISTS timezone VARCHAR DEFAULT 'UTC'",
        "ALTER TABLE tokens ADD COLUMN IF NOT EXISTS tour VARCHAR",
        "ALTER TABLE tokens ADD COLUMN IF NOT EXISTS last_used TIMESTAMP",
    )),
    # Goals: a tour's goals, and the visits that reached each scene and action kept in
    # the rollups. Rolled-up days whose raw events are kept are rolled up again (at the
    # next housekeeping round) to gain those rows; until then their raw events answer.
    Migration(3, (
        "ALTER TABLE tours ADD COLUMN goals VARCHAR[]",
        "DELETE FROM rolled_days WHERE day >= coalesce((SELECT value FROM meta "
        "WHERE key = 'raw_from')::DATE, DATE '1970-01-01')",
    )),
    # The sender's country (serve --geoip): NULL for every event before it.
    Migration(4, ("ALTER TABLE events ADD COLUMN IF NOT EXISTS country VARCHAR",)),
    # Where a view came from (issue 27): its referrer's host, channel and UTM values.
    Migration(5, (
        "ALTER TABLE events ADD COLUMN IF NOT EXISTS source VARCHAR",
        "ALTER TABLE events ADD COLUMN IF NOT EXISTS channel VARCHAR",
        "ALTER TABLE events ADD COLUMN IF NOT EXISTS utm_source VARCHAR",
        "ALTER TABLE events ADD COLUMN IF NOT EXISTS utm_medium VARCHAR",
        "ALTER TABLE events ADD COLUMN IF NOT EXISTS utm_campaign VARCHAR",
    )),
    # A tour's own weekly report: the addresses it goes to (tours add --report-to).
    Migration(6, (
        """CREATE TABLE IF NOT EXISTS tour_reports (
            tour VARCHAR PRIMARY KEY, recipients VARCHAR[] NOT NULL)""",
    )),
)  # fmt: skip
LATEST = MIGRATIONS[-1].number


def migrate(
    connection: duckdb.DuckDBPyConnection,
    schema: str,
    where: Path,
    migrations: Sequence[Migration] = MIGRATIONS,
) -> list[int]:
    """Bring the file's schema to the last of ``migrations``; the numbers applied, in order.

    A new file (no ``meta`` table) gets ``schema`` at that version instead. ``where``
    names the file in errors: a newer version, or a migration DuckDB refuses, is a
    ``StorageError`` in one line, and the file is left as it was.
    """
    latest = migrations[-1].number
    if not _has_meta(connection):
        with _transaction(connection, where, latest):
            connection.execute(schema)
            _write_version(connection, latest)
        return []
    version = _version(connection, where)
    if version > latest:
        raise StorageError(
            f"{where} was made by a newer tourviews (schema {version}; this one reads up to "
            f"{latest}): upgrade tourviews"
        )
    applied = []
    for migration in migrations:
        if migration.number <= version:
            continue
        with _transaction(connection, where, migration.number):
            for statement in migration.statements:
                connection.execute(statement)
            _write_version(connection, migration.number)
        applied.append(migration.number)
    if applied:
        log.info("brought %s from schema %d to %d", where, version, applied[-1])
    return applied


def _has_meta(connection: duckdb.DuckDBPyConnection) -> bool:
    # meta is the first table every tourviews has made: without it, nothing is there
    rows = connection.execute(
        "SELECT 1 FROM duckdb_tables() WHERE database_name = current_database() "
        "AND schema_name = current_schema() AND table_name = 'meta'"
    ).fetchall()
    return bool(rows)


def _version(connection: duckdb.DuckDBPyConnection, where: Path) -> int:
    rows = connection.execute("SELECT value FROM meta WHERE key = ?", [VERSION_KEY]).fetchall()
    if not rows:
        return 1  # a first open by a tourviews before versions, cut short before writing it
    value = str(rows[0][0])
    if not value.isascii() or not value.isdigit():
        raise StorageError(f"{where} holds schema version {value!r}, which is not a number")
    return int(value)


def _write_version(connection: duckdb.DuckDBPyConnection, version: int) -> None:
    connection.execute(
        "INSERT INTO meta VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        [VERSION_KEY, str(version)],
    )


@contextmanager
def _transaction(
    connection: duckdb.DuckDBPyConnection, where: Path, version: int
) -> Iterator[None]:
    """One transaction for a migration and its version; what DuckDB refuses, in one line."""
    connection.begin()
    try:
        yield
        connection.commit()
    except BaseException as exc:
        with contextlib.suppress(duckdb.Error):
            connection.rollback()  # none is left to roll back if the commit itself failed
        if isinstance(exc, duckdb.Error):
            first = str(exc).splitlines()[0]
            raise StorageError(f"cannot bring {where} to schema {version}: {first}") from None
        raise
