"""EventWriter: one transaction per batch, whichever way the rows travel."""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

import duckdb
import pytest

from tests.builders import event
from tourviews.ingest.store.writer import SMALL_BATCH, EventWriter
from tourviews.storage.database import Database, open_database
from tourviews.storage.event import COLUMNS, Event

AT = datetime(2026, 11, 24, 12, 0)


def row(n: int) -> Event:
    scene = f"s{n}" if n % 2 else None
    return event(ts=AT, tour=f"t{n % 3}", scene=scene, ip_hash=os.urandom(16), device="mobile",
                 browser="Safari", os="iOS")  # fmt: skip


@pytest.fixture
def db(tmp_path: Path) -> Database:
    return open_database(tmp_path)


def stored(db: Database) -> list[tuple[object, ...]]:
    return db.cursor().execute(f"SELECT {COLUMNS} FROM events ORDER BY visitor").fetchall()


@pytest.mark.parametrize("size", [1, SMALL_BATCH - 1, SMALL_BATCH, 3 * SMALL_BATCH])
def test_every_row_is_stored_as_given(db: Database, size: int) -> None:
    rows = [row(n) for n in range(size)]
    drops = {(AT, "t1", os.urandom(16), "bot"): n + 1 for n in range(size)}
    EventWriter(db).write(rows, drops)
    assert stored(db) == sorted(rows, key=lambda r: r[4])
    counted = db.cursor().execute("SELECT sum(beacons) FROM drop_log").fetchone()
    assert counted == (sum(drops.values()),)


@pytest.mark.parametrize("size", [2, 2 * SMALL_BATCH])
@pytest.mark.parametrize("drops", [0, 3])  # events alone are one statement, in autocommit
def test_a_failed_batch_keeps_nothing_and_leaves_nothing_for_the_next(
    db: Database, size: int, drops: int
) -> None:
    writer = EventWriter(db)
    bad = [row(n) for n in range(size - 1)]
    bad.append(event(ts=AT, visitor="not a uuid", ip_hash=b"\x00" * 16, os="Linux"))
    counters = {(AT, "t1", bytes([n]) * 16, "bot"): 1 for n in range(drops)}
    with pytest.raises(duckdb.Error):
        writer.write(bad, counters)
    good = [row(0)]
    writer.write(good, {})
    assert stored(db) == good
    assert db.cursor().execute("SELECT count(*) FROM drop_log").fetchone() == (0,)
