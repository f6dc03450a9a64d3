"""One running instance: every part built from the settings, started and stopped together."""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from datetime import date, datetime, timedelta

import duckdb

from tourviews.analytics.auth import Authenticator
from tourviews.analytics.breakdowns import GEOIP
from tourviews.analytics.clustering import cluster_completed_weeks
from tourviews.analytics.retention import RETENTION, purge, retention_days
from tourviews.analytics.rollup import complete_before, roll_up_completed
from tourviews.api import Context
from tourviews.ingest.agents.classifier import AgentClassifier
from tourviews.ingest.countries import open_countries
from tourviews.ingest.http.address import ClientAddress
from tourviews.ingest.http.beacon import BeaconEndpoint
from tourviews.ingest.http.forget import WITHDRAWALS, WithdrawalEndpoint
from tourviews.ingest.privacy import IpHasher
from tourviews.ingest.repeats import RepeatedErrors
from tourviews.ingest.rules.pipeline import Pipeline
from tourviews.ingest.rules.throttle import Gcra, Limiter
from tourviews.ingest.store.committer import Committer
from tourviews.ingest.store.writer import EventWriter
from tourviews.modes import Mode, Parts, mode_for
from tourviews.operations import Operations
from tourviews.settings import Settings
from tourviews.storage.clock import Clock
from tourviews.storage.database import Database, erased, open_database, write_meta
from tourviews.storage.drops import fold_drop_log
from tourviews.storage.registry import Registry
from tourviews.storage.salts import SALT_FILE, Salts, SaltStore
from tourviews.storage.secret import derive_key, load_secret

log = logging.getLogger("tourviews")

HOUSEKEEPING_SECONDS = 60.0
STOP_TASK_SECONDS = 5.0
CLOCK_STEP = timedelta(hours=1)  # a wall clock further ahead than this has stepped


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


def daily_round(cursor: duckdb.DuckDBPyConnection, today: date, retention_days: int) -> int:
    """Roll up, apply retention, sort completed weeks by tour; the raw events deleted."""
    deleted = purge(cursor, today, retention_days)
    cluster_completed_weeks(cursor, today)
    return deleted


class Service:
    def __init__(self, settings: Settings, clock: Clock, db: Database | None = None) -> None:
        self.settings = settings
        self.clock = clock
        secret = load_secret(settings.data_dir)
        self.db = db or open_database(settings.data_dir)
        self.registry = Registry(self.db, clock)
        # Kept in Redis mode too: the salts an embedded past left there die on time.
        self.salts = SaltStore(settings.data_dir / SALT_FILE, derive_key(secret, "salts"), clock)
        self.committer = Committer(
            EventWriter(self.db).write, settings.max_batch, settings.max_pending
        )
        self._errors = RepeatedErrors(log)
        self.mode: Mode = mode_for(settings)(
            Parts(settings, clock, secret, self.db, self.registry, self.committer, self.salts,
                  self._errors)
        )  # fmt: skip
        self.pipeline = Pipeline(
            tours=lambda: self.registry.tours,
            hasher=hasher(self.mode.salts, settings),
            ledger=self.mode.ledger,
            countries=open_countries(settings.geoip),
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
            self.mode.store,
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
            # what the stats show, read by a command without the server too
            write_meta(cursor, GEOIP, "off" if settings.geoip is None else "on")
        self._purged_on: date | None = None
        # How far the wall clock is ahead of the monotonic one: it changes when the wall
        # clock steps. Retention deletes raw events by the wall clock's date, so while it
        # runs ahead of the real time elapsed, retention waits (see _clock_ahead).
        self._lead = clock.now().timestamp() - clock.monotonic()
        self._ahead_since: float | None = None
        self.started = time.monotonic()
        self.instance = secrets.token_hex(16)  # names this process in server.json and /healthz
        self._housekeeping: asyncio.Task[None] | None = None
        self._erased_seen: float | None = None  # monotonic: when deleted data was first seen

    async def start(self) -> None:
        """Begin the housekeeping, then what the mode runs beside the service."""
        self._housekeeping = asyncio.create_task(self._keep_house())
        await self.mode.start()

    async def stop(self) -> None:
        """Commit everything accepted, then close the database (checkpointed)."""
        besides = self.mode.halt()
        if self._housekeeping is not None:
            self._housekeeping.cancel()
        await ended([task for task in (self._housekeeping, *besides) if task is not None])
        await self.committer.drain()
        await self.mode.close()
        self.db.close()

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

    async def ready(self) -> bool:
        """Whether beacons can be accepted now (/healthz)."""
        return await self.mode.ready()

    async def _keep_house(self) -> None:
        while True:
            await asyncio.sleep(HOUSEKEEPING_SECONDS)
            self.mode.forget_idle(self.clock.monotonic())  # loop-thread state
            try:
                await asyncio.to_thread(self.mode.keep_house)
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
        self.mode.forgotten()

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
