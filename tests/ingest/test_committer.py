"""Group commit: many events per transaction, each released only after its commit."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
from datetime import datetime
from pathlib import Path

import pytest

from tests.builders import event
from tourviews.ingest.repeats import RepeatedErrors
from tourviews.ingest.store.committer import Committer, Overloaded, StorageFailed
from tourviews.ingest.store.writer import EventWriter
from tourviews.storage.database import Database, open_database
from tourviews.storage.drops import fold_drop_log
from tourviews.storage.event import Event

AT = datetime(2026, 11, 24, 12, 0)


def row(tour: str = "t1") -> Event:
    return event(ts=AT, tour=tour, ip_hash=os.urandom(16), os="Linux")


@pytest.fixture
def db(tmp_path: Path) -> Database:
    return open_database(tmp_path)


def count(db: Database) -> int:
    found = db.cursor().execute("SELECT count(*) FROM events").fetchone()
    assert found is not None
    return int(found[0])


def test_concurrent_events_share_few_commits(db: Database) -> None:
    batches: list[int] = []

    async def scenario() -> None:
        committer = Committer(EventWriter(db).write, max_batch=1_000)
        committer.on_commit = lambda size, seconds: batches.append(size)
        await asyncio.gather(*(committer.add_row(row()) for _ in range(2_500)))
        await committer.drain()

    asyncio.run(scenario())
    assert count(db) == 2_500
    assert sum(batches) == 2_500
    assert max(batches) <= 1_000
    assert len(batches) <= 4  # 2,500 events, at most 1,000 per commit


def test_event_is_on_disk_when_its_wait_ends(db: Database) -> None:
    async def scenario() -> int:
        committer = Committer(EventWriter(db).write)
        await committer.add_row(row())
        seen = count(db)  # read through another cursor: only committed data is visible
        await committer.drain()
        return seen

    assert asyncio.run(scenario()) == 1


def test_a_cancelled_request_does_not_cancel_its_neighbours(db: Database) -> None:
    async def request(done: asyncio.Future[None]) -> None:
        await done

    async def scenario() -> bool:
        committer = Committer(EventWriter(db).write)
        gone = asyncio.create_task(request(committer.add_row(row())))
        stays = committer.add_row(row())  # the same batch
        await asyncio.sleep(0)
        gone.cancel()
        await stays
        await committer.drain()
        return gone.cancelled()

    assert asyncio.run(scenario())
    assert count(db) == 2  # the cancelled request's event was committed all the same


def test_dropped_beacons_become_counters_not_rows(db: Database) -> None:
    key = (AT.replace(minute=0), "t1", b"\x01" * 16, "duplicate")

    async def scenario() -> None:
        committer = Committer(EventWriter(db).write)
        waits = [committer.add_drop(key, wait=True) for _ in range(5)]
        committer.add_drop(key, wait=False)
        await asyncio.gather(*(w for w in waits if w is not None))
        await committer.drain()

    asyncio.run(scenario())
    assert count(db) == 0
    cursor = db.cursor()
    assert cursor.execute("SELECT sum(beacons) FROM drop_counters").fetchall() == [(6,)]
    fold_drop_log(cursor)
    assert cursor.execute("SELECT beacons FROM drops").fetchall() == [(6,)]
    assert cursor.execute("SELECT count(*) FROM drop_log").fetchall() == [(0,)]


def test_folding_while_the_writer_appends_loses_no_count(db: Database) -> None:
    writer = EventWriter(db)
    keys = [(AT.replace(minute=0), "t1", bytes([n]) * 16, "throttled") for n in range(3)]
    done = threading.Event()

    def fold_until_done() -> None:
        while not done.is_set():
            fold_drop_log(db.cursor())

    folder = threading.Thread(target=fold_until_done)
    folder.start()
    try:
        for _ in range(300):
            writer.write([], dict.fromkeys(keys, 2))
    finally:
        done.set()
        folder.join()
    cursor = db.cursor()
    fold_drop_log(cursor)
    rows = cursor.execute("SELECT ip_hash, beacons FROM drops ORDER BY 1").fetchall()
    assert rows == [(key[2], 600) for key in keys]


def test_failed_commit_fails_every_waiter_and_keeps_nothing(db: Database) -> None:
    def broken(rows: object, drops: object) -> None:
        raise OSError("disk full")

    async def scenario() -> list[BaseException | None]:
        committer = Committer(broken)
        results = await asyncio.gather(
            *(committer.add_row(row()) for _ in range(3)), return_exceptions=True
        )
        return list(results)  # type: ignore[arg-type]

    results = asyncio.run(scenario())
    assert all(isinstance(result, StorageFailed) for result in results)


def test_full_queue_refuses_more_events(db: Database) -> None:
    async def scenario() -> None:
        committer = Committer(EventWriter(db).write, max_pending=2)
        waits = [committer.add_row(row()), committer.add_row(row())]
        with pytest.raises(Overloaded):
            committer.add_row(row())
        await asyncio.gather(*waits)
        committer.add_row(row())  # room again once committed
        await committer.drain()

    asyncio.run(scenario())
    assert count(db) == 3


def test_drain_commits_everything_queued_then_refuses(db: Database) -> None:
    async def scenario() -> None:
        committer = Committer(EventWriter(db).write)
        for _ in range(10):
            committer.add_row(row())
        await committer.drain()
        with pytest.raises(Overloaded):
            committer.add_row(row())

    asyncio.run(scenario())
    assert count(db) == 10


def test_stored_timestamp_is_the_server_time_in_utc(db: Database) -> None:
    async def scenario() -> None:
        committer = Committer(EventWriter(db).write)
        await committer.add_row(row())
        await committer.drain()

    asyncio.run(scenario())
    found = db.cursor().execute("SELECT ts FROM events").fetchone()
    assert found is not None and found[0] == AT


def test_a_full_disk_is_logged_once_a_minute_with_a_count(
    db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(rows: object, drops: object) -> None:
        raise OSError("disk full")

    async def scenario() -> None:
        committer = Committer(broken)
        for _ in range(200):  # 200 commits, one after another
            with contextlib.suppress(StorageFailed):
                await committer.add_row(row())

    with caplog.at_level(logging.ERROR, logger="tourviews.committer"):
        asyncio.run(scenario())
    assert [r.getMessage() for r in caplog.records] == ["commit of 1 events failed: OSError"]


def test_a_repeated_error_says_how_many_were_held_back() -> None:
    log = logging.getLogger("tests.repeats")
    now = [0.0]
    errors = RepeatedErrors(log, interval=60, clock=lambda: now[0])
    lines: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: lines.append(record.getMessage())  # type: ignore[method-assign]
    log.addHandler(handler)
    try:
        for second in range(0, 130, 2):  # every 2 s for over two minutes
            now[0] = second
            errors.error("OSError", "commit failed: %s", "OSError")
        errors.error("ValueError", "something else")  # another kind has its own interval
    finally:
        log.removeHandler(handler)
    assert lines == [
        "commit failed: OSError",
        "commit failed: OSError (and 29 more like it in the 60 s before)",
        "commit failed: OSError (and 29 more like it in the 60 s before)",
        "something else",
    ]
