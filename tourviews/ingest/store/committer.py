"""Group commit: many requests, one transaction.

Handlers hand their event to the committer and wait on the batch that holds it.
One writer thread commits a batch at a time; while it does, new events gather in
the next batch (at most ``max_batch`` events, further ones open another). When the
writer is idle a batch starts on the next loop turn, so a lone beacon waits only
for its own commit and a busy server commits ~1,000 events per fsync. A waiter
is released only after the commit that holds its event returns, so a 204 means
the event is on disk.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter, deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from tourviews.ingest.repeats import RepeatedErrors
from tourviews.ingest.store.writer import DropKey
from tourviews.storage.event import Event

log = logging.getLogger("tourviews.committer")

Write = Callable[[Sequence[Event], Mapping[DropKey, int]], None]


class Overloaded(Exception):
    """The write queue is full, or the committer has stopped; answer 503."""


class StorageFailed(Exception):
    """The commit that held the event failed; answer 503."""


@dataclass(eq=False)
class Batch:
    committed: asyncio.Future[None]  # resolved after the commit, failed or not (for drain)
    rows: list[Event] = field(default_factory=list)
    drops: Counter[DropKey] = field(default_factory=Counter)
    waiters: list[asyncio.Future[None]] = field(default_factory=list)  # one per request


class Committer:
    def __init__(self, write: Write, max_batch: int = 1_000, max_pending: int = 50_000) -> None:
        self._write = write
        self._max_batch = max_batch
        self._max_pending = max_pending
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tourviews-writer")
        self._waiting: deque[Batch] = deque()
        self._in_flight: Batch | None = None
        self._scheduled = False
        self._closed = False
        self.pending = 0  # events accepted but not yet committed
        self.failed = False  # the last commit failed
        self.on_commit: Callable[[int, float], None] = lambda size, seconds: None
        self._errors = RepeatedErrors(log)

    def add_row(self, row: Event) -> asyncio.Future[None]:
        """Queue a counted event; the future resolves once it is committed."""
        batch = self._open_batch()
        batch.rows.append(row)
        return self._wait(batch)

    def add_drop(self, key: DropKey, wait: bool) -> asyncio.Future[None] | None:
        """Count a dropped beacon; with ``wait`` the future resolves once it is committed."""
        if not wait:
            if self._closed:
                return None
            batch = self._waiting[-1] if self._waiting else self._new_batch()
            batch.drops[key] += 1
            self._schedule()
            return None
        batch = self._open_batch()
        batch.drops[key] += 1
        return self._wait(batch)

    async def settled(self) -> None:
        """Wait until every event queued so far is committed (or its commit failed)."""
        batch = self._waiting[-1] if self._waiting else self._in_flight
        if batch is not None:
            await asyncio.shield(batch.committed)

    async def drain(self) -> None:
        """Stop taking events and commit everything queued."""
        self._closed = True
        while self._in_flight is not None or self._waiting:
            batch = self._in_flight or self._waiting[-1]
            await batch.committed
        self._executor.shutdown(wait=True)

    def _open_batch(self) -> Batch:
        if self._closed or self.pending >= self._max_pending:
            raise Overloaded("the write queue is full")
        batch = self._waiting[-1] if self._waiting else None
        if batch is None or len(batch.waiters) >= self._max_batch:
            batch = self._new_batch()
        return batch

    def _new_batch(self) -> Batch:
        batch = Batch(asyncio.get_running_loop().create_future())
        self._waiting.append(batch)
        return batch

    def _wait(self, batch: Batch) -> asyncio.Future[None]:
        # Its own future: a cancelled request cannot cancel the batch its neighbours wait on.
        waiter: asyncio.Future[None] = batch.committed.get_loop().create_future()
        batch.waiters.append(waiter)
        self.pending += 1
        self._schedule()
        return waiter

    def _schedule(self) -> None:
        if self._in_flight is None and not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._start)

    def _start(self) -> None:
        self._scheduled = False
        if self._in_flight is not None or not self._waiting:
            return
        batch = self._in_flight = self._waiting.popleft()
        loop = asyncio.get_running_loop()
        started = loop.time()
        future = loop.run_in_executor(self._executor, self._write, batch.rows, batch.drops)
        future.add_done_callback(lambda f: self._finished(batch, f, started))

    def _finished(self, batch: Batch, future: asyncio.Future[None], started: float) -> None:
        self._in_flight = None
        self.pending -= len(batch.waiters)
        error = future.exception()
        self.failed = error is not None
        if error is None:
            seconds = asyncio.get_running_loop().time() - started
            self.on_commit(len(batch.rows) + sum(batch.drops.values()), seconds)
        else:
            kind = type(error).__name__
            self._errors.error(kind, "commit of %d events failed: %s", len(batch.waiters), kind)
        for waiter in batch.waiters:
            if waiter.done():  # the request was cancelled
                continue
            if error is None:
                waiter.set_result(None)
            else:
                waiter.set_exception(StorageFailed(type(error).__name__))
                waiter.exception()  # retrieved: no warning about a request that went away
        batch.committed.set_result(None)
        if self._waiting:
            self._schedule()
