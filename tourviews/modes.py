"""The embedded mode and Redis mode: what differs between them, chosen once.

- **Embedded** (no ``--redis``): the ledger's state is this process's memory, rebuilt
  from the database at start; the day's salts are in a file in the data directory;
  the committer stores what the ledger accepts, and a withdrawal waits on it.
- **Redis** (``--redis URL``, the primary of docs/scaling.md): the ledger's state and
  the day's salts are Redis'; the drain stores what the stream holds, and a withdrawal
  waits on it. The primary claims the Redis, publishes its settings and tours for the
  ingest nodes, takes each day's salt ahead, and has Redis rewrite its append-only
  file once data is deleted.

``mode_for`` makes the choice from the settings. The server asks the chosen mode to
``check``, before anything starts, what its start will need outside this process;
the service then builds it and calls it without asking which it is.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Protocol

import redis
from redis.asyncio import Redis
from redis.exceptions import RedisError

from tourviews.ingest.http.forget import Settles
from tourviews.ingest.repeats import RepeatedErrors
from tourviews.ingest.rules.dedup import Deduplicator
from tourviews.ingest.rules.ledger import Ledger
from tourviews.ingest.rules.memory_ledger import MemoryLedger
from tourviews.ingest.rules.names import SceneBound, source_bounds
from tourviews.ingest.rules.redis_ledger import (
    NAME_KEYS,
    RedisLedger,
    Rules,
    answers,
    connect,
    seed_names,
)
from tourviews.ingest.rules.restore import counted_names, restore
from tourviews.ingest.rules.rotation import RotationGuard
from tourviews.ingest.rules.throttle import Gcra, Limiter
from tourviews.ingest.rules.visits import Visits
from tourviews.ingest.store.committer import Committer
from tourviews.ingest.store.drain import StreamDrain, backlog
from tourviews.ingest.store.writer import EventWriter
from tourviews.metrics import SharedFigures
from tourviews.settings import Settings
from tourviews.storage.clock import Clock
from tourviews.storage.database import Database
from tourviews.storage.errors import StorageError
from tourviews.storage.redis_state import (
    FOLLOW_SECONDS,
    SETTINGS,
    check_before_start,
    check_durability,
    claim,
    publish_settings,
    publish_tours,
    release,
    renew,
    reported_counters,
)
from tourviews.storage.registry import Registry, Tour
from tourviews.storage.salts import Salts, SaltStore, SharedSalts, day_start
from tourviews.storage.secret import derive_key

log = logging.getLogger("tourviews")

STOP_DRAIN_SECONDS = 5.0
SALT_AHEAD = timedelta(hours=1)  # tomorrow's salt is taken this long before midnight


def limits(settings: Settings) -> tuple[Gcra, Gcra, Gcra]:
    """The rate limits a beacon must pass: per source network, per visitor, per tour."""
    return Gcra(settings.ip_rate), Gcra(settings.visitor_rate), Gcra(settings.tour_rate)


def shared_rules(settings: Settings) -> Rules:
    """What the shared ledger's script is filled in with."""
    return Rules(limits(settings), settings.dedup_window_seconds, settings.rotation_limit,
                 settings.max_scenes)  # fmt: skip


def shared_ledger(client: Redis, settings: Settings, secret: bytes) -> RedisLedger:
    """The Redis ledger, judging by ``settings`` (a node's: the primary's, as published)."""
    return RedisLedger(client, shared_rules(settings), derive_key(secret, "visitor keys"))


def shared_salts(url: str, secret: bytes, clock: Clock) -> SharedSalts:
    """The day's salts in Redis, sealed under the instance secret's key."""
    client = redis.Redis.from_url(url, socket_timeout=SharedSalts.TIMEOUT)
    return SharedSalts(client, derive_key(secret, "salts"), clock)


async def salts_ahead(
    salts: SharedSalts, clock: Clock, running: Callable[[], bool], every: float = 60.0
) -> None:
    """Take today's salt at once, and tomorrow's in the hour before midnight (UTC), in a
    thread: the synchronous call to Redis never runs on the event loop, where a Redis
    that does not answer would hold every request for ``SharedSalts.TIMEOUT``. A salt
    not taken ahead (Redis away all that hour) is taken by the day's first beacon.

    A failure is logged once a day and kind, in one line, and the loop goes on: it
    must not end in an exception nobody retrieves (a clock that disagrees with Redis'
    makes the salt "past its lifetime" on every turn)."""
    said: set[tuple[date, str]] = set()
    while running():
        now = clock.now()
        tomorrow = now.date() + timedelta(days=1)
        days = [now.date()] + [tomorrow] * (day_start(tomorrow) - now <= SALT_AHEAD)
        for day in days:
            if not salts.holds(day):
                try:
                    await asyncio.to_thread(salts.salt, day)
                except (StorageError, ValueError) as exc:
                    if (day, type(exc).__name__) not in said:
                        said.add((day, type(exc).__name__))
                        log.warning("the salt of %s was not taken ahead: %s", day, exc)
        await asyncio.sleep(every)


def holder(settings: Settings) -> str:
    """What a primary claims its Redis with: its data directory."""
    return str(settings.data_dir.resolve())


class Store(Settles, Protocol):
    """What stores the beacons the ledger accepts: the committer, or the stream's drain."""

    on_commit: Callable[[int, float], None]  # each commit's size and seconds (/metrics)


@dataclass(frozen=True)
class Parts:
    """What the service assembles before its mode, for the mode to build on."""

    settings: Settings
    clock: Clock
    secret: bytes
    db: Database
    registry: Registry
    committer: Committer
    salts: SaltStore  # the data directory's file
    errors: RepeatedErrors  # the service's: one line per kind of failure and minute


class Mode(Protocol):
    """Where the beacons' state lives; the service's parts that depend on it."""

    role: str  # what the start line says of it, after the data directory
    ledger: Ledger
    salts: Salts  # where the IP hasher takes the day's salt from
    store: Store
    figures: SharedFigures | None  # what /metrics shows besides this process's counters

    async def start(self) -> None:
        """Begin what runs beside the service (after the housekeeping has begun)."""
        ...

    def halt(self) -> list[asyncio.Task[None]]:
        """Have what runs beside the service end at its next turn; what to wait for."""
        ...

    async def close(self) -> None:
        """Let go of what the mode holds, once the committer has committed everything."""
        ...

    async def ready(self) -> bool:
        """Whether beacons can be accepted now (/healthz)."""
        ...

    def forget_idle(self, moment: float) -> None:
        """Let go of the windows idle long enough (on the event loop's thread)."""
        ...

    def keep_house(self) -> None:
        """The mode's part of each housekeeping round (in a thread)."""
        ...

    def forgotten(self) -> None:
        """Deleted data (a compaction, a new day's end of a salt) must leave the mode's
        own files too."""
        ...


class EmbeddedMode:
    """The ledger in this process, rebuilt from the database; the salts in a file."""

    role = ""

    def __init__(self, parts: Parts) -> None:
        settings, clock, db = parts.settings, parts.clock, parts.db
        self._committer = parts.committer
        self._max_pending = settings.max_pending
        dedup = Deduplicator(settings.dedup_window_seconds)
        self._rotation = RotationGuard(settings.dedup_window_seconds, settings.rotation_limit)
        scenes = SceneBound(settings.max_scenes)
        actions = SceneBound(settings.max_scenes, declared=False)
        visits = Visits()
        sources = source_bounds(settings.max_scenes)
        restore(db, dedup, self._rotation, scenes, clock.now(), clock.monotonic(), actions,
                visits, sources)  # fmt: skip
        self.ledger: Ledger = MemoryLedger(
            limiter=Limiter(*limits(settings)),
            deduplicator=dedup,
            rotation=self._rotation,
            scenes=scenes,
            actions=actions,
            visits=visits,
            sources=sources,
            sink=self._committer,
        )
        self.salts: Salts = parts.salts
        self.store: Store = self._committer
        self.figures: SharedFigures | None = None

    @classmethod
    def check(cls, settings: Settings) -> None:
        """Nothing outside this process to check before it starts."""

    async def start(self) -> None:
        """Nothing runs beside the service: the committer starts with its first beacon."""

    def halt(self) -> list[asyncio.Task[None]]:
        """Nothing runs beside the service."""
        return []

    async def close(self) -> None:
        """The state is memory, rebuilt from the database at the next start."""

    async def ready(self) -> bool:
        """Whether the committer stores and has room for more."""
        return not self._committer.failed and self._committer.pending < self._max_pending

    def forget_idle(self, moment: float) -> None:
        """The rotation guard lets go of the networks idle for its window."""
        self._rotation.forget_idle(moment)

    def keep_house(self) -> None:
        """Nothing besides the service's own round."""

    def forgotten(self) -> None:
        """The state is memory and the database: nothing else keeps what was deleted."""


class RedisMode:
    """The primary of a Redis: the ledger and the salts there, the drain into DuckDB."""

    role = ", primary of the Redis"

    def __init__(self, parts: Parts) -> None:
        url = parts.settings.redis_url
        assert url is not None
        self._settings = parts.settings
        self._clock = parts.clock
        self._secret = parts.secret
        self._db = parts.db
        self._registry = parts.registry
        self._errors = parts.errors
        self._holder = holder(parts.settings)
        self._redis = connect(url)
        self._shared_salts = shared_salts(url, parts.secret, parts.clock)
        self.salts: Salts = self._shared_salts
        self.ledger: Ledger = shared_ledger(self._redis, parts.settings, parts.secret)
        self._drain = StreamDrain(self._redis, parts.db, EventWriter(parts.db))
        self.store: Store = self._drain
        files = self._files = redis.Redis.from_url(url, socket_timeout=5)  # used in threads
        self.figures: SharedFigures | None = SharedFigures(
            nodes=lambda: reported_counters(files), backlog=lambda: backlog(files)
        )
        self._rewrite_due = False  # Redis' append-only file holds data deleted since
        parts.db.after_compaction.append(self.forgotten)
        self._tasks: list[asyncio.Task[None]] = []  # the drain first: it is stopped, not cancelled
        self._stopping = False

    @classmethod
    def check(cls, settings: Settings) -> None:
        """Refuse, before anything starts, a Redis that cannot keep the promise a 204
        makes, or that another primary holds (``RedisUnfit``, in one line)."""

        async def check(client: Redis) -> None:
            await check_durability(client, settings.redis_durability)
            await claim(client, holder(settings))

        check_before_start(settings.redis_url or "", check)

    async def start(self) -> None:
        """Claim the Redis, publish the settings and tours, give Redis the names counted
        before it held them; then drain, follow the registry and take salts ahead."""
        await claim(self._redis, self._holder)
        await publish_settings(self._redis, self._settings.judging(), self._secret)
        await publish_tours(self._redis, self._registry.tours)
        for dimension in NAME_KEYS:
            with self._db.using() as cursor:
                counted = counted_names(cursor, dimension)
            await seed_names(self._redis, dimension, counted, self._settings.max_scenes)
        ahead = salts_ahead(self._shared_salts, self._clock, lambda: not self._stopping)
        self._tasks = [asyncio.create_task(self._drain.run()),
                       asyncio.create_task(self._publish_tours()),
                       asyncio.create_task(ahead)]  # fmt: skip

    def halt(self) -> list[asyncio.Task[None]]:
        """End the loops at their next turn, a cancel swallowed or not; the drain commits
        the batch in hand rather than cut it short."""
        self._stopping = True
        self._drain.stop()
        for task in self._tasks[1:]:
            task.cancel()
        return self._tasks

    async def close(self) -> None:
        """Commit what was acknowledged meanwhile, while Redis answers; release the claim."""
        # never beside a drain still committing (its batch and this one could be trimmed
        # out of order)
        if all(task.done() for task in self._tasks[:1]):
            with contextlib.suppress(RedisError, OSError, TimeoutError):
                async with asyncio.timeout(STOP_DRAIN_SECONDS):
                    while await self._drain.drain_once(block_ms=None):
                        pass
        with contextlib.suppress(RedisError, OSError):
            await release(self._redis, self._holder)
        await self._redis.aclose()

    async def ready(self) -> bool:
        """Whether Redis answers now."""
        return await answers(self._redis)

    def forget_idle(self, moment: float) -> None:
        """Redis lets its keys expire by itself."""

    def keep_house(self) -> None:
        """Ask Redis again for a rewrite it refused."""
        if self._rewrite_due:
            self.forgotten()

    def forgotten(self) -> None:
        """Have Redis rewrite its append-only file from what it holds now.

        The file keeps every write since its last rewrite: the stream's entries the
        primary committed and trimmed, and salts Redis deleted. Rewritten after each
        compaction (an erasure's data leaves the database file) and each day (a salt's
        48 hours end at a UTC midnight), the file no longer holds them. Redis rewrites
        in the background; one already running is retried at the next housekeeping.
        """
        try:
            self._files.bgrewriteaof()
            self._rewrite_due = False
        except (RedisError, OSError) as exc:
            self._rewrite_due = True
            log.warning("Redis did not start rewriting its append-only file: %s", exc)

    async def _publish_tours(self) -> None:
        """Every change of the registry reaches the ingest nodes within a second; so do
        the settings and tours again when Redis lost them (its data lost or replaced)."""
        client = self._redis
        published: Mapping[str, Tour] | None = self._registry.tours
        while not self._stopping:
            await asyncio.sleep(FOLLOW_SECONDS)
            tours = self._registry.tours  # a new snapshot on every change
            try:
                await renew(client, self._holder)
                if not await client.exists(SETTINGS):
                    await publish_settings(client, self._settings.judging(), self._secret)
                    published = None
                if tours is published:
                    continue
                await publish_tours(client, tours)
                published = tours
            except (RedisError, OSError) as exc:
                self._errors.error(type(exc).__name__, "publishing the tours failed: %s", exc)


def mode_for(settings: Settings) -> type[EmbeddedMode] | type[RedisMode]:
    """The mode ``settings`` ask for: Redis mode when a Redis URL is given."""
    return EmbeddedMode if settings.redis_url is None else RedisMode
