"""The primary's drain: the shared ledger's stream into DuckDB, each entry exactly once.

Ingest nodes append what each beacon became to a Redis Stream
(``tourviews.ingest.rules.redis_ledger``).
The primary reads it through a consumer group, a batch at a time, and commits each
batch's rows and drop counters together with the ID of the batch's last entry
(``meta``), in one transaction. Only then does it acknowledge and trim. After a
crash anywhere in between, the entries delivered but not acknowledged come again;
those at or below the committed ID are acknowledged without being written again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import redis
from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError

from tourviews.ingest.repeats import RepeatedErrors
from tourviews.ingest.rules.redis_ledger import STREAM
from tourviews.ingest.sources import BOUNDED, OTHER
from tourviews.ingest.store.writer import DropKey, EventWriter
from tourviews.storage import event
from tourviews.storage.database import Database, read_meta
from tourviews.storage.event import Event

log = logging.getLogger("tourviews.drain")

GROUP, CONSUMER = "primary", "primary"
DEAD = b"tv:{0}:unreadable"  # entries the drain cannot read, kept for an operator
APPLIED = "stream_applied"  # meta key: the ID of the last stream entry committed
BATCH = 1_000
BLOCK_MS = 1_000
SETTLE_SECONDS = 10.0  # a withdrawal waits this long for the drain, then answers 503
PENDING, NEW = "0", ">"  # XREADGROUP: this consumer's unacknowledged entries; then new ones

Entry = tuple[bytes, dict[bytes, bytes]]


def _id(value: bytes | str) -> tuple[int, int]:
    text = value.decode() if isinstance(value, bytes) else value
    milliseconds, sequence = text.split("-")
    return int(milliseconds), int(sequence)


class StreamDrain:
    def __init__(self, client: Redis, db: Database, writer: EventWriter) -> None:
        self._client = client
        self._writer = writer
        with db.using() as cursor:
            self.applied = _id(read_meta(cursor, APPLIED) or "0-0")
        self._cursor = PENDING  # after a start, what was delivered before comes first
        self._errors = RepeatedErrors(log)
        self._progress = asyncio.Condition()
        self._stopping = False
        # events and counters committed, seconds taken: the primary's /metrics histograms
        self.on_commit: Callable[[int, float], None] = lambda size, seconds: None

    def stop(self) -> None:
        """End ``run`` after the batch in hand (cancelling it could leave a commit running)."""
        self._stopping = True

    async def run(self) -> None:
        """Drain until stopped; Redis or the database failing is retried, never fatal."""
        while not self._stopping:
            try:
                await self.drain_once()
            except (RedisError, OSError) as exc:
                self._errors.error(type(exc).__name__, "draining the stream failed: %s", exc)
                self._cursor = PENDING  # a Redis that lost its data lost the group too
                await asyncio.sleep(1)
            except Exception as exc:  # a failed commit: the entries stay pending
                kind = type(exc).__name__
                self._errors.error(kind, "committing the stream failed: %s", kind)
                self._cursor = PENDING
                await asyncio.sleep(1)

    async def drain_once(self, block_ms: int | None = BLOCK_MS) -> int:
        """Commit one batch; how many entries it held (0: none waited)."""
        if self._cursor == PENDING:
            await self._create_group()
        reply: Any = await self._client.xreadgroup(
            GROUP, CONSUMER, {STREAM: self._cursor}, count=BATCH,
            block=None if self._cursor == PENDING else block_ms,
        )  # fmt: skip
        entries: list[Entry] = reply[0][1] if reply else []
        if not entries:
            if self._cursor == PENDING:  # nothing (more) pending: on to new entries
                self._cursor = NEW
                return await self.drain_once(block_ms)
            return 0
        last = _id(entries[-1][0])
        fresh = [entry for entry in entries if _id(entry[0]) > self.applied]
        if fresh:
            rows, drops, unreadable = decode(fresh)
            if unreadable:  # kept aside, not lost, and not in the way of the rest
                log.error("%d stream entries cannot be read: moved to %s",
                          len(unreadable), DEAD.decode())  # fmt: skip
                for _, fields in unreadable:
                    await self._client.xadd(DEAD, fields)  # type: ignore[arg-type]
            marker = (APPLIED, "{}-{}".format(*last))
            started = time.monotonic()
            await asyncio.to_thread(self._writer.write, rows, drops, marker)
            self.applied = last
            self.on_commit(len(rows) + sum(drops.values()), time.monotonic() - started)
        ids = [entry_id for entry_id, _ in entries]
        await self._client.xack(STREAM, GROUP, *ids)
        # Trimmed up to and including the last: nothing committed stays in Redis' memory.
        await self._client.xtrim(STREAM, minid=f"{last[0]}-{last[1] + 1}",
                                 approximate=False)  # fmt: skip
        async with self._progress:
            self._progress.notify_all()
        return len(entries)

    async def settled(self) -> None:
        """Wait until every entry appended so far is committed (read-your-writes).

        Raises ``TimeoutError`` after ``SETTLE_SECONDS`` (a drain that cannot commit).
        """
        newest: Any = await self._client.xrevrange(STREAM, count=1)
        if not newest:
            return
        target = _id(newest[0][0])
        async with asyncio.timeout(SETTLE_SECONDS), self._progress:
            await self._progress.wait_for(lambda: self.applied >= target)

    async def _create_group(self) -> None:
        try:
            await self._client.xgroup_create(STREAM, GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
            return
        # A new group: a new Redis, or one that lost its data. Its entries' IDs come from
        # its clock and could fall at or below those committed, which would be taken
        # for entries committed already: IDs go on from the last committed.
        info: Any = await self._client.xinfo_stream(STREAM)
        if _id(info["last-generated-id"]) < self.applied:
            last = "{}-{}".format(*self.applied)
            await self._client.execute_command("XSETID", STREAM, last)  # type: ignore[no-untyped-call]


def backlog(client: redis.Redis) -> int:
    """Stream entries the primary has not committed yet (tests, the benchmark, operators)."""
    groups: Any = client.xinfo_groups(STREAM)
    group = next((g for g in groups if g["name"] == GROUP.encode()), None)
    if group is None:  # no primary has read the stream yet
        return int(client.xlen(STREAM))
    return int(group["lag"] or 0) + int(group["pending"])


def past_bounds(other: bytes) -> dict[str, Any]:
    """The fields an entry's ``other`` names (``redis_ledger.lua``), each as ``OTHER``;
    ``ValueError`` for a name that is no bounded field."""
    fields = other.decode().split()
    if not set(fields) <= set(BOUNDED):
        raise ValueError(f"not bounded fields: {other[:100]!r}")
    return dict.fromkeys(fields, OTHER)


def decode(
    entries: Sequence[Entry],
) -> tuple[list[Event], Counter[DropKey], list[Entry]]:
    """The rows and drop counters the entries carry (``redis_ledger.lua`` wrote them), and
    the entries that carry neither in a form this version reads."""
    rows: list[Event] = []
    drops: Counter[DropKey] = Counter()
    unreadable: list[Entry] = []
    for entry in entries:
        fields = entry[1]
        try:
            row = fields.get(b"row")
            if row is not None:
                counted = event.decode(row)
                if b"noscene" in fields:  # a view's scene past the tour's bound is not kept
                    counted = counted._replace(scene=None)
                if b"other" in fields:  # a view's values past their bounds: (other)
                    counted = counted._replace(**past_bounds(fields[b"other"]))
                rows.append(counted)
            else:
                hour = datetime.fromisoformat(fields[b"hour"].decode())
                key = (hour, fields[b"tour"].decode(), fields[b"sender"], fields[b"drop"].decode())
                drops[key] += 1
        except (KeyError, ValueError, TypeError, UnicodeDecodeError):  # orjson's is a ValueError
            unreadable.append(entry)
    return rows, drops, unreadable
