"""One running instance: every part built from the settings, started and stopped together."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Callable, Mapping
from datetime import date, datetime, timedelta

import duckdb
import redis
from redis.asyncio import Redis
from redis.exceptions import RedisError

from tourviews.analytics.auth import Authenticator
from tourviews.analytics.clustering import cluster_completed_weeks
from tourviews.analytics.retention import RETENTION, purge, retention_days
from tourviews.analytics.rollup import complete_before, roll_up_completed
from tourviews.api import Context
from tourviews.ingest.agents.classifier import AgentClassifier
from tourviews.ingest.http.address import ClientAddress
from tourviews.ingest.http.beacon import BeaconEndpoint
from tourviews.ingest.http.forget import WITHDRAWALS, WithdrawalEndpoint
from tourviews.ingest.privacy import IpHasher
from tourviews.ingest.repeats import RepeatedErrors
from tourviews.ingest.rules.dedup import Deduplicator
from tourviews.ingest.rules.ledger import Ledger
from tourviews.ingest.rules.memory_ledger import MemoryLedger
from tourviews.ingest.rules.names import SceneBound
from tourviews.ingest.rules.pipeline import Pipeline
from tourviews.ingest.rules.redis_ledger import RedisLedger, Rules, answers, connect, seed_names
from tourviews.ingest.rules.restore import counted_names, restore
from tourviews.ingest.rules.rotation import RotationGuard
from tourviews.ingest.rules.throttle import Gcra, Limiter
from tourviews.ingest.rules.visits import Visits
from tourviews.ingest.store.committer import Committer
from tourviews.ingest.store.drain import StreamDrain, backlog
from tourviews.ingest.store.writer import EventWriter
from tourviews.metrics import SharedFigures
from tourviews.operations import Operations
from tourviews.settings import Settings
from tourviews.storage.clock import Clock
from tourviews.storage.database import Database, erased, open_database, write_meta
from tourviews.storage.drops import fold_drop_log
from tourviews.storage.errors import StorageError
from tourviews.storage.redis_state import (
    FOLLOW_SECONDS,
    SETTINGS,
    claim,
    publish_settings,
    publish_tours,
    release,
    renew,
    reported_counters,
)
from tourviews.storage.registry import Registry, Tour
from tourviews.storage.salts import SALT_FILE, Salts, SaltStore, SharedSalts, day_start
from tourviews.storage.secret import derive_key, load_secret

log = logging.getLogger("tourviews")

HOUSEKEEPING_SECONDS = 60.0
STOP_DRAIN_SECONDS = 5.0
STOP_TASK_SECONDS = 5.0
CLOCK_STEP = timedelta(hours=1)  # a wall clock further ahead than this has stepped
SALT_AHEAD = timedelta(hours=1)  # tomorrow's salt is taken this long before midnight


async def ended(tasks: list[asyncio.Task[None]]) -> None:
    """Wait for ``tasks`` to end, ``STOP_TASK_SECONDS`` at most.

    A cancel can be swallowed by a Redis client call it lands in (the call then fails
    and the loop goes on): the loops also end on a flag, and a stop never hangs on them.
    """
    if tasks:
        await asyncio.wait(tasks, timeout=STOP_TASK_SECONDS)


def hasher(salts: Salts, settings: Settings) -> IpHasher:
    return IpHasher(salts, settings.ip_prefix_v4, settings.ip_prefix_v6,
                    settings.limit_prefix_v4, settings.limit_prefix_v6)  # fmt: skip


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


def daily_round(cursor: duckdb.DuckDBPyConnection, today: date, retention_days: int) -> int:
    """Roll up, apply retention, sort completed weeks by tour; the raw events deleted."""
    deleted = purge(cursor, today, retention_days)
    cluster_completed_weeks(cursor, today)
    return deleted


class Service:
    def __init__(self, settings: Settings, clock: Clock, db: Database | None = None) -> None:
        self.settings = settings
        self.clock = clock
        secret = self._secret = load_secret(settings.data_dir)
        self._holder = str(settings.data_dir.resolve())  # what claims Redis in Redis mode
        self.db = db or open_database(settings.data_dir)
        self.registry = Registry(self.db, clock)
        self.salts = SaltStore(settings.data_dir / SALT_FILE, derive_key(secret, "salts"), clock)
        self.dedup = Deduplicator(settings.dedup_window_seconds)
        self.rotation = RotationGuard(settings.dedup_window_seconds, settings.rotation_limit)
        self.scenes = SceneBound(settings.max_scenes)
        self.actions = SceneBound(settings.max_scenes, declared=False)
        self.visits = Visits()
        self.committer = Committer(
            EventWriter(self.db).write, settings.max_batch, settings.max_pending
        )
        self.redis: Redis | None = None
        self.drain: StreamDrain | None = None
        self._redis_files: redis.Redis | None = None  # for BGREWRITEAOF, off the event loop
        salts: Salts = self.salts
        if settings.redis_url is None:
            restore(self.db, self.dedup, self.rotation, self.scenes, clock.now(),
                    clock.monotonic(), self.actions, self.visits)  # fmt: skip
            self.ledger: Ledger = MemoryLedger(
                limiter=Limiter(*limits(settings)),
                deduplicator=self.dedup,
                rotation=self.rotation,
                scenes=self.scenes,
                actions=self.actions,
                visits=self.visits,
                sink=self.committer,
            )
        else:  # the state is Redis': nothing to restore (docs/scaling.md)
            self.redis = connect(settings.redis_url)
            salts = self.shared_salts = shared_salts(settings.redis_url, secret, clock)
            self.ledger = shared_ledger(self.redis, settings, secret)
            self.drain = StreamDrain(self.redis, self.db, EventWriter(self.db))
            self._redis_files = redis.Redis.from_url(settings.redis_url, socket_timeout=5)
            self.db.after_compaction.append(self.rewrite_redis_files)
        self.pipeline = Pipeline(
            tours=lambda: self.registry.tours,
            hasher=hasher(salts, settings),
            ledger=self.ledger,
        )
        self.beacon = BeaconEndpoint(
            AgentClassifier(),
            self.pipeline,
            ClientAddress(settings.trusted_proxies),
            clock,
        )
        self.withdrawal = WithdrawalEndpoint(
            self.erase,
            self.pipeline,
            self.drain or self.committer,
            ClientAddress(settings.trusted_proxies),
            clock,
            Limiter(Gcra(settings.ip_rate), Gcra(settings.visitor_rate), Gcra(WITHDRAWALS)),
        )
        self.operations = Operations(self.db, self.registry, clock)
        self.context = Context(
            self.operations, Authenticator(self.registry, derive_key(secret, "control"), clock)
        )
        with self.db.using() as cursor:
            write_meta(cursor, RETENTION, str(settings.raw_retention_days))
        self._purged_on: date | None = None
        # How far the wall clock is ahead of the monotonic one: it changes when the wall
        # clock steps. Retention deletes raw events by the wall clock's date, so while it
        # runs ahead of the real time elapsed, retention waits (see _clock_ahead).
        self._lead = clock.now().timestamp() - clock.monotonic()
        self._ahead_since: float | None = None
        self.started = time.monotonic()
        self.instance = secrets.token_hex(16)  # names this process in server.json and /healthz
        self._housekeeping: asyncio.Task[None] | None = None
        # Redis mode: the drain (first: it is stopped, not cancelled), the publisher, salts
        self._shared: list[asyncio.Task[None]] = []
        self._stopping = False
        self._errors = RepeatedErrors(log)
        self._erased_seen: float | None = None  # monotonic: when deleted data was first seen
        self._rewrite_due = False  # Redis' append-only file holds data deleted since

    async def start(self) -> None:
        self._housekeeping = asyncio.create_task(self._keep_house())
        if self.redis is not None and self.drain is not None:
            await claim(self.redis, self._holder)
            await publish_settings(self.redis, self.settings.judging(), self._secret)
            await publish_tours(self.redis, self.registry.tours)
            for dimension in ("scene", "action"):
                with self.db.using() as cursor:
                    counted = counted_names(cursor, dimension)
                await seed_names(self.redis, dimension, counted, self.settings.max_scenes)
            ahead = salts_ahead(self.shared_salts, self.clock, lambda: not self._stopping)
            self._shared = [asyncio.create_task(self.drain.run()),
                            asyncio.create_task(self._publish_tours(self.redis)),
                            asyncio.create_task(ahead)]  # fmt: skip

    async def stop(self) -> None:
        """Commit everything accepted, then close the database (checkpointed)."""
        self._stopping = True  # the loops end at their next turn, a cancel swallowed or not
        if self.drain is not None:
            self.drain.stop()  # the batch in hand is committed, not cut short
        for task in [self._housekeeping, *self._shared[1:]]:
            if task is not None:
                task.cancel()
        await ended([task for task in (self._housekeeping, *self._shared) if task is not None])
        await self.committer.drain()
        drain_ended = all(task.done() for task in self._shared[:1])
        # what was acknowledged meanwhile, while Redis answers; never beside a drain still
        # committing (its batch and this one could be trimmed out of order)
        if self.drain is not None and drain_ended:
            with contextlib.suppress(RedisError, OSError, TimeoutError):
                async with asyncio.timeout(STOP_DRAIN_SECONDS):
                    while await self.drain.drain_once(block_ms=None):
                        pass
        if self.redis is not None:
            with contextlib.suppress(RedisError, OSError):
                await release(self.redis, self._holder)
            await self.redis.aclose()
        self.db.close()

    async def _publish_tours(self, client: Redis) -> None:
        """Every change of the registry reaches the ingest nodes within a second; so do
        the settings and tours again when Redis lost them (its data lost or replaced)."""
        published: Mapping[str, Tour] | None = self.registry.tours
        while not self._stopping:
            await asyncio.sleep(FOLLOW_SECONDS)
            tours = self.registry.tours  # a new snapshot on every change
            try:
                await renew(client, self._holder)
                if not await client.exists(SETTINGS):
                    await publish_settings(client, self.settings.judging(), self._secret)
                    published = None
                if tours is published:
                    continue
                await publish_tours(client, tours)
                published = tours
            except (RedisError, OSError) as exc:
                self._errors.error(type(exc).__name__, "publishing the tours failed: %s", exc)

    def _clock_ahead(self, now: datetime) -> bool:
        """Whether the wall clock stepped ahead of real time since start (for under a day).

        A step ahead that lasts a day is taken as a correction of a clock that was
        behind: retention then goes by it again.
        """
        moment = self.clock.monotonic()
        lead = now.timestamp() - moment
        if lead - self._lead <= CLOCK_STEP.total_seconds():
            self._ahead_since = None
            return False
        if self._ahead_since is None:
            self._ahead_since = moment
            log.warning("the wall clock stepped %.0f hours ahead: retention waits",
                        (lead - self._lead) / 3600)  # fmt: skip
        if moment - self._ahead_since >= timedelta(days=1).total_seconds():
            self._lead, self._ahead_since = lead, None
            return False
        return True

    def accepting(self) -> bool:
        if isinstance(self.ledger, RedisLedger):
            return self.ledger.available
        return not self.committer.failed and self.committer.pending < self.settings.max_pending

    async def ready(self) -> bool:
        """Whether beacons can be accepted now (/healthz): in Redis mode, Redis answers."""
        if self.redis is None:
            return self.accepting()
        return await answers(self.redis)

    async def _keep_house(self) -> None:
        while True:
            await asyncio.sleep(HOUSEKEEPING_SECONDS)
            self.rotation.forget_idle(self.clock.monotonic())  # loop-thread state
            try:
                if self._rewrite_due:
                    await asyncio.to_thread(self.rewrite_redis_files)
                await asyncio.to_thread(self.keep_house)
                await asyncio.to_thread(self.compact_when_due)
            except Exception as exc:  # keep the service up; the next round tries again
                kind = type(exc).__name__
                self._errors.error(kind, "housekeeping failed: %s", kind)

    def keep_house(self) -> None:
        """Destroy salts past their lifetime, fold the drop log, roll up, purge once a day."""
        self.salts.expire()
        now = self.clock.now()
        today = complete_before(now)
        with self.db.maintenance, self.db.using() as cursor:
            if self._purged_on == today or self._clock_ahead(now):
                fold_drop_log(cursor)
                roll_up_completed(cursor, today)
                return
            deleted = daily_round(cursor, today, retention_days(cursor))  # folds too
        self._purged_on = today
        log.info("retention applied: %d raw events deleted", deleted)
        # a new UTC day: the salt of the day before yesterday is gone from Redis' memory
        self.rewrite_redis_files()

    @property
    def shared_figures(self) -> SharedFigures | None:
        """Redis mode's figures for /metrics: the nodes' beacons, the stream's backlog."""
        client = self._redis_files
        if client is None:
            return None
        return SharedFigures(lambda: reported_counters(client), lambda: backlog(client))

    def rewrite_redis_files(self) -> None:
        """Have Redis rewrite its append-only file from what it holds now.

        The file keeps every write since its last rewrite: the stream's entries the
        primary committed and trimmed, and salts Redis deleted. Rewritten after each
        compaction (an erasure's data leaves the database file) and each day (a salt's
        48 hours end at a UTC midnight), the file no longer holds them. Redis rewrites
        in the background; one already running is retried at the next housekeeping.
        """
        if self._redis_files is None:
            return
        try:
            self._redis_files.bgrewriteaof()
            self._rewrite_due = False
        except (RedisError, OSError) as exc:
            self._rewrite_due = True
            log.warning("Redis did not start rewriting its append-only file: %s", exc)

    def erase(self, visitor: str) -> int:
        """Erase a visitor's events, as ``tourviews forget`` does; how many were deleted."""
        return self.operations.forget(visitor)

    def compact_when_due(self) -> bool:
        """Compact once personal data deleted ``compact_delay`` ago is still in the file."""
        with self.db.using() as cursor:
            pending = erased(cursor)
        if not pending:
            self._erased_seen = None
            return False
        moment = self.clock.monotonic()
        if self._erased_seen is None:
            self._erased_seen = moment
        if moment - self._erased_seen < self.settings.compact_delay_seconds:
            return False
        before, after = self.db.compact()
        self._erased_seen = None
        log.info("compacted the database: %d bytes before, %d after", before, after)
        return True
