"""``tourviews ingest``: a stateless ingest node in front of the shared ledger's Redis.

It serves the beacon endpoint, the page scripts and ``/healthz``, and nothing else:
no data directory, no database. It judges beacons by the settings the primary
published (rates, windows, bounds, prefixes) and follows the primary's tours; the
instance secret comes from ``TOURVIEWS_SECRET``, which must be the primary's (the
IP hashes, the visitor keys and the salts' seal derive from it).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from redis.asyncio import Redis
from redis.exceptions import RedisError

from tourviews.app import BEACON_PATH, serve_script
from tourviews.front import PrimaryProxy
from tourviews.ingest.agents.classifier import AgentClassifier
from tourviews.ingest.countries import open_countries
from tourviews.ingest.http import scripts
from tourviews.ingest.http.address import ClientAddress
from tourviews.ingest.http.beacon import BeaconEndpoint, Receive, Scope, Send, answer
from tourviews.ingest.rules.pipeline import Pipeline
from tourviews.ingest.rules.redis_ledger import RedisLedger, answers, connect
from tourviews.modes import salts_ahead, shared_ledger, shared_salts
from tourviews.service import ended, hasher
from tourviews.settings import Settings
from tourviews.storage.clock import Clock
from tourviews.storage.redis_state import (
    FollowedTours,
    check_before_start,
    check_durability,
    published_settings,
    report_counters,
)
from tourviews.storage.secret import ENV_VAR, MIN_LENGTH

REPORT_SECONDS = 1.0


class NodeSecretMissing(ValueError):
    pass


def node_secret(environ: dict[str, str] | None = None) -> bytes:
    """The primary's instance secret, as the environment gives it."""
    value = (os.environ if environ is None else environ).get(ENV_VAR, "")
    if len(value) < MIN_LENGTH:
        raise NodeSecretMissing(
            f"{ENV_VAR} must be set to the primary's instance secret (at least {MIN_LENGTH} "
            f"characters: the content of its data directory's secret.key, or its {ENV_VAR})"
        )
    return value.encode()


def check_redis(settings: Settings, secret: bytes) -> None:
    """Refuse, before anything starts, a Redis that cannot keep the promise a 204 makes,
    or on which no primary with this instance secret has started (``RedisUnfit``)."""

    async def check(client: Redis) -> None:
        await check_durability(client, settings.redis_durability)
        await published_settings(client, secret)

    check_before_start(settings.redis_url or "", check)


class IngestNode:
    def __init__(
        self, settings: Settings, clock: Clock, secret: bytes, primary: Path | None = None
    ) -> None:
        assert settings.redis_url is not None
        self.settings = settings
        self.clock = clock
        self._secret = secret
        self.redis = connect(settings.redis_url)
        self.tours = FollowedTours(self.redis)
        self.instance = secrets.token_hex(16)
        self.beacon: BeaconEndpoint | None = None  # once started
        self.ledger: RedisLedger | None = None
        self._follow: asyncio.Task[None] | None = None
        self._ahead: asyncio.Task[None] | None = None  # tourviews.modes.salts_ahead
        self._report: asyncio.Task[None] | None = None
        self._primary = primary  # a front worker of serve --workers: the primary's socket
        self.proxy: PrimaryProxy | None = None

    async def start(self) -> None:
        """Judge as the primary does: its settings and its tours, read from Redis."""
        url = self.settings.redis_url
        assert url is not None
        await check_durability(self.redis, self.settings.redis_durability)
        judging = self.settings.judging_as(await published_settings(self.redis, self._secret))
        await self.tours.refresh()
        self.ledger = shared_ledger(self.redis, judging, self._secret)
        salts = shared_salts(url, self._secret, self.clock)
        pipeline = Pipeline(
            tours=lambda: self.tours.tours,
            hasher=hasher(salts, judging),
            ledger=self.ledger,
            countries=open_countries(self.settings.geoip),
        )
        self.beacon = BeaconEndpoint(
            AgentClassifier(), pipeline, ClientAddress(self.settings.trusted_proxies), self.clock
        )
        self._follow = asyncio.create_task(self.tours.follow())
        self._report = asyncio.create_task(self._report_counters())
        self._ahead = asyncio.create_task(
            salts_ahead(salts, self.clock, lambda: not self.tours.stopped)
        )
        if self._primary is not None:
            self.proxy = PrimaryProxy(self._primary, ClientAddress(self.settings.trusted_proxies))

    async def stop(self) -> None:
        self.tours.stopped = True
        tasks = [task for task in (self._follow, self._ahead, self._report) if task is not None]
        for task in tasks:
            task.cancel()
        await ended(tasks)
        with contextlib.suppress(RedisError, OSError):  # the last counts, once served
            await self._report_once()
        if self.proxy is not None:
            await self.proxy.close()
        await self.redis.aclose()

    async def _report_counters(self) -> None:
        """The beacon counters, for the primary's /metrics, each ``REPORT_SECONDS``."""
        while not self.tours.stopped:
            await asyncio.sleep(REPORT_SECONDS)
            with contextlib.suppress(RedisError, OSError):  # the next report tries again
                await self._report_once()

    async def _report_once(self) -> None:
        if self.beacon is not None:
            await report_counters(self.redis, self.instance[:12], self.beacon.outcomes)

    async def ready(self) -> bool:
        return self.ledger is not None and await answers(self.redis)


class NodeApp:
    """``/v1/beacon`` straight to the endpoint; the scripts and ``/healthz`` by FastAPI;
    on a front worker, every other request to the primary."""

    def __init__(self, node: IngestNode, api: FastAPI) -> None:
        self.node = node
        self.api = api
        self.own = {"/healthz", *(f"/{name}" for name in scripts.SCRIPTS)}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        beacon = self.node.beacon
        if scope["type"] == "http" and scope["path"] == BEACON_PATH and beacon is not None:
            await beacon(scope, receive, send)
        elif scope["type"] == "http" and scope["path"] == BEACON_PATH:
            await answer(send, 503, {"error": "starting"}, [(b"retry-after", b"1")])
        elif scope["type"] == "http" and self.node.proxy and scope["path"] not in self.own:
            await self.node.proxy(scope, receive, send)
        else:
            await self.api(scope, receive, send)


def create_node_app(node: IngestNode) -> NodeApp:
    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await node.start()
        try:
            yield
        finally:
            await node.stop()

    api = FastAPI(title="tourviews ingest node", lifespan=lifespan, openapi_url=None)
    for name, served in scripts.SCRIPTS.items():
        serve_script(api, name, served)

    @api.get("/healthz")
    async def healthz() -> JSONResponse:
        body = {"status": "ok", "instance": node.instance, "role": "ingest"}
        if node.proxy is not None:  # a front: whether what it forwards can be answered now
            body["primary"] = "ok" if await node.proxy.answers() else "unavailable"
        if await node.ready():
            return JSONResponse(body)
        body["status"] = "unavailable"
        return JSONResponse(body, 503, headers={"Retry-After": "1"})

    return NodeApp(node, api)
