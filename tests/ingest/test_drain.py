"""The primary's drain: the stream into DuckDB exactly once, whatever was cut short."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from redis.asyncio import Redis

from tests.builders import event
from tests.redis_server import redis_server
from tourviews.ingest.rules.redis_ledger import STREAM
from tourviews.ingest.store.drain import APPLIED, CONSUMER, DEAD, GROUP, StreamDrain, decode
from tourviews.ingest.store.writer import EventWriter
from tourviews.storage.database import Database, open_database, read_meta
from tourviews.storage.event import encode

AT = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


@pytest.fixture
def url(tmp_path: Path) -> Iterator[str]:
    with redis_server(tmp_path / "redis") as url:
        yield url


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    db = open_database(tmp_path / "data")
    yield db
    db.close()


def row(number: int) -> dict[str, bytes]:
    return {"row": encode(event(visitor=f"00000000-0000-4000-8000-{number:012d}"))}


def events(db: Database) -> int:
    with db.using() as cursor:
        found = cursor.execute("SELECT count(*), count(DISTINCT visitor) FROM events").fetchone()
    assert found is not None
    assert found[0] == found[1]  # no entry stored twice
    return int(found[0])


async def append(client: Redis, count: int, first: int = 0) -> None:
    for number in range(first, first + count):
        await client.xadd(STREAM, row(number))  # type: ignore[arg-type]


async def drain_all(drain: StreamDrain) -> None:
    while await drain.drain_once(block_ms=50):
        pass


def test_entries_are_committed_then_acknowledged_and_trimmed(url: str, db: Database) -> None:
    async def scenario() -> None:
        client = Redis.from_url(url)
        drain = StreamDrain(client, db, EventWriter(db))
        await append(client, 2500)
        await drain_all(drain)
        assert events(db) == 2500
        assert await client.xlen(STREAM) == 0  # trimmed up to the last committed
        pending = await client.xpending(STREAM, GROUP)
        assert pending["pending"] == 0
        last = (await client.xinfo_stream(STREAM))["last-generated-id"]
        with db.using() as cursor:
            assert read_meta(cursor, APPLIED) == last.decode()

    asyncio.run(scenario())


def test_entries_committed_but_not_acknowledged_are_not_stored_again(
    url: str, db: Database
) -> None:
    async def scenario() -> None:
        client = Redis.from_url(url)
        await client.xgroup_create(STREAM, GROUP, id="0", mkstream=True)
        await append(client, 300)
        # a primary read them and committed them, and died before acknowledging
        reply = await client.xreadgroup(GROUP, CONSUMER, {STREAM: ">"}, count=200)
        delivered = reply[0][1]
        rows, drops, _ = decode(delivered)
        EventWriter(db).write(rows, drops, (APPLIED, delivered[-1][0].decode()))
        assert events(db) == 200
        # the next primary
        await drain_all(StreamDrain(client, db, EventWriter(db)))
        assert events(db) == 300
        assert (await client.xpending(STREAM, GROUP))["pending"] == 0

    asyncio.run(scenario())


def test_entries_delivered_but_not_committed_are_stored_once(url: str, db: Database) -> None:
    async def scenario() -> None:
        client = Redis.from_url(url)
        await client.xgroup_create(STREAM, GROUP, id="0", mkstream=True)
        await append(client, 300)
        # a primary read 200 and died before its commit
        await client.xreadgroup(GROUP, CONSUMER, {STREAM: ">"}, count=200)
        await drain_all(StreamDrain(client, db, EventWriter(db)))
        assert events(db) == 300

    asyncio.run(scenario())


def test_settled_waits_for_what_was_appended_before(url: str, db: Database) -> None:
    async def scenario() -> None:
        client = Redis.from_url(url)
        drain = StreamDrain(client, db, EventWriter(db))
        running = asyncio.create_task(drain.run())
        await append(client, 50)
        await asyncio.wait_for(drain.settled(), 10)
        assert events(db) == 50
        running.cancel()

    asyncio.run(scenario())


def test_an_unreadable_entry_is_set_aside_and_the_rest_stored(url: str, db: Database) -> None:
    async def scenario() -> None:
        client = Redis.from_url(url)
        await append(client, 5)
        await client.xadd(STREAM, {"row": b'["not", "a", "row"]'})
        await client.xadd(STREAM, {"drop": b"bot"})  # no hour, tour or sender
        await append(client, 5, first=5)
        await drain_all(StreamDrain(client, db, EventWriter(db)))
        assert events(db) == 10
        assert await client.xlen(DEAD) == 2
        assert await client.xlen(STREAM) == 0

    asyncio.run(scenario())


def test_an_entry_written_before_the_event_spec_is_read() -> None:
    """A node of the previous version may have appended entries that a new primary drains."""
    visitor = "00000000-0000-4000-8000-000000000001"
    row = (f'["2026-11-24T12:00:00","t1","view","lobby","{visitor}","aa","desktop","Chrome",'
           '"Windows",null,null]').encode()  # fmt: skip
    rows, drops, unreadable = decode(
        [(b"1-0", {b"row": row}), (b"1-1", {b"row": row, b"noscene": b"1"})]
    )
    kept = event(scene="lobby", visitor=visitor, ip_hash=b"\xaa")
    assert rows == [kept, kept._replace(scene=None)]  # a scene past the bound is not kept
    assert (drops, unreadable) == ({}, [])
