"""What the processes of one instance share through Redis, besides the ledger.

- The durability check: a 204 in Redis mode means the beacon is in the stream on a
  Redis that fsyncs every write (``appendonly yes``, ``appendfsync always``).
- The primary's settings that ingest nodes must judge by (``Published``), and its
  tours: the primary publishes them, every node follows within ``FOLLOW_SECONDS``.
- The nodes' beacon counters, which the primary's ``/metrics`` shows (a node has no
  API of its own, and behind ``serve --workers N`` the fronts answer every beacon).

Every key carries the partition's hash tag, as the ledger's do
(``tourviews.ingest.rules.redis_ledger``).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import orjson
from redis import Redis as SyncRedis
from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError

from tourviews.storage.errors import StorageError
from tourviews.storage.registry import Tour, tour_from_document

log = logging.getLogger("tourviews.shared")

PREFIX = "tv:{0}:"
TOURS = PREFIX + "tours"  # a hash: tour ID -> its document
TOURS_VERSION = PREFIX + "tours:version"  # a digest of them all: followers compare it
SETTINGS = PREFIX + "settings"  # what the primary judges by, for the ingest nodes
PRIMARY = PREFIX + "primary"  # the data directory of the primary that holds this Redis
COUNTERS = PREFIX + "counters:"  # + a node's name: a hash of its beacons by outcome
COUNTERS_SECONDS = 86_400  # a stopped node's last counts stay a day, then go
CLAIM_SECONDS = 5
FOLLOW_SECONDS = 0.5
STRICT, RELAXED = "strict", "relaxed"


def shown(url: str) -> str:
    """The Redis URL as printed: its password, if any, left out."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = f"{parts.username}:***@" if parts.username else ":***@"
    return urlunsplit(parts._replace(netloc=user + netloc))


class RedisUnfit(StorageError):
    """The Redis cannot keep the promise a 204 makes (or cannot be reached)."""


def check_before_start(url: str, check: Callable[[Redis], Awaitable[None]]) -> None:
    """Run ``check`` on a client of its own, before the server's event loop runs."""

    async def run() -> None:
        client = Redis.from_url(url, socket_timeout=5)
        try:
            await check(client)
        finally:
            await client.aclose()

    asyncio.run(run())


async def check_durability(client: Redis, durability: str) -> None:
    """Refuse a Redis that does not fsync every write, unless ``relaxed`` is chosen."""
    try:
        await client.ping()
    except (RedisError, OSError) as exc:
        raise RedisUnfit(f"cannot reach Redis: {exc}") from None
    if durability == RELAXED:
        return
    try:
        appendonly = (await client.config_get("appendonly")).get("appendonly")
        appendfsync = (await client.config_get("appendfsync")).get("appendfsync")
    except ResponseError:  # CONFIG renamed away, as managed services do
        appendonly = appendfsync = None
    if (appendonly, appendfsync) != ("yes", "always"):
        lost = ("up to a second of beacons" if appendonly == "yes" and appendfsync == "everysec"
                else "every beacon since its last snapshot" if appendonly == "no"
                else "beacons not yet written to disk")  # fmt: skip
        raise RedisUnfit(
            f"Redis must fsync every write (appendonly yes, appendfsync always); it has "
            f"appendonly {appendonly or 'unknown'}, appendfsync {appendfsync or 'unknown'}. "
            f"Fix its configuration, or accept losing {lost} when it crashes with "
            f"--redis-durability relaxed (docs/scaling.md)"
        )
    try:
        policy = (await client.config_get("maxmemory-policy")).get("maxmemory-policy")
        limit = (await client.config_get("maxmemory")).get("maxmemory")
    except ResponseError:
        policy = limit = None
    if limit != "0" and policy != "noeviction":  # it could evict acknowledged beacons
        raise RedisUnfit(
            f"Redis must never evict keys (maxmemory-policy noeviction, or no maxmemory); "
            f"it has maxmemory-policy {policy or 'unknown'}. Fix its configuration, or "
            f"accept it with --redis-durability relaxed (docs/scaling.md)"
        )


def secret_check(secret: bytes) -> str:
    """What shows that two processes hold the same instance secret, and nothing of it."""
    return hashlib.sha256(b"tourviews secret check\0" + secret).hexdigest()


async def publish_settings(client: Redis, settings: Mapping[str, Any], secret: bytes) -> None:
    await client.set(SETTINGS, orjson.dumps({**settings, "secret_check": secret_check(secret)}))


async def published_settings(client: Redis, secret: bytes) -> dict[str, Any]:
    """The primary's settings; an ingest node cannot judge a beacon without them, nor
    with another instance secret (its hashes and the day's salt would not be the
    primary's)."""
    raw = await client.get(SETTINGS)
    if raw is None:
        raise RedisUnfit("no primary has started on this Redis: start tourviews serve --redis")
    found: dict[str, Any] = orjson.loads(raw)
    if found.pop("secret_check", None) != secret_check(secret):
        raise RedisUnfit(
            "TOURVIEWS_SECRET is not the primary's instance secret (the content of its "
            "data directory's secret.key, or its TOURVIEWS_SECRET)"
        )
    return found


async def claim(client: Redis, holder: str) -> None:
    """Hold this Redis as its one primary (``holder``: this primary's data directory).

    A second primary on the same Redis, another data directory by mistake, would
    publish its own tours over the first's. The claim lapses ``CLAIM_SECONDS`` after
    its holder stops renewing it; the same data directory takes it over at once (a
    restart after a crash: only one process can open that directory's database).
    """
    held: Any = await client.set(PRIMARY, holder, nx=True, ex=CLAIM_SECONDS, get=True)
    if held is not None and held.decode() != holder:
        raise RedisUnfit(f"another primary holds this Redis (data directory {held.decode()}); "
                         "one primary per Redis: stop it, or use another Redis")  # fmt: skip
    await client.set(PRIMARY, holder, ex=CLAIM_SECONDS)


async def renew(client: Redis, holder: str) -> None:
    await client.set(PRIMARY, holder, ex=CLAIM_SECONDS)


async def release(client: Redis, holder: str) -> None:
    if await client.get(PRIMARY) == holder.encode():
        await client.delete(PRIMARY)


def _documents(tours: Mapping[str, Tour]) -> dict[str, bytes]:
    return {tour: orjson.dumps(found.document()) for tour, found in sorted(tours.items())}


def _version(documents: Mapping[str, bytes]) -> str:
    digest = hashlib.sha256()
    for tour, document in documents.items():
        digest.update(tour.encode() + b"\0" + document + b"\0")
    return digest.hexdigest()


async def publish_tours(client: Redis, tours: Mapping[str, Tour]) -> None:
    """Replace the published tours with ``tours``, atomically."""
    documents = _documents(tours)
    async with client.pipeline(transaction=True) as pipe:
        pipe.delete(TOURS)
        if documents:
            pipe.hset(TOURS, mapping=documents)  # type: ignore[arg-type]
        pipe.set(TOURS_VERSION, _version(documents))
        await pipe.execute()


class FollowedTours:
    """The primary's tours as an ingest node sees them: read again once they change."""

    def __init__(self, client: Redis) -> None:
        self._client = client
        self._version: bytes | None = None
        self.tours: Mapping[str, Tour] = MappingProxyType({})
        self.stopped = False  # ``follow`` ends at its next turn

    async def refresh(self) -> None:
        version: Any = await self._client.get(TOURS_VERSION)
        if version is None or version == self._version:
            return
        documents: Any = await self._client.hgetall(TOURS)
        self.tours = MappingProxyType(
            {t.decode(): tour_from_document(orjson.loads(doc)) for t, doc in documents.items()}
        )
        self._version = version

    async def follow(self) -> None:
        """Refresh until cancelled; while Redis is away, the last tours known stand."""
        away = False
        while not self.stopped:
            try:
                await self.refresh()
                if away:
                    log.info("Redis answers again: following the primary's tours")
                away = False
            except (RedisError, OSError) as exc:
                if not away:  # once per outage, not twice a second
                    log.warning("cannot read the tours from Redis (%s): the last known stand",
                                type(exc).__name__)  # fmt: skip
                away = True
            await asyncio.sleep(FOLLOW_SECONDS)


async def report_counters(client: Redis, node: str, counters: Mapping[str, int]) -> None:
    """A node's beacon counters so far (absolute: a report repeated changes nothing)."""
    if not counters:
        return
    async with client.pipeline(transaction=True) as pipe:
        pipe.hset(COUNTERS + node, mapping={str(k): v for k, v in counters.items()})
        pipe.expire(COUNTERS + node, COUNTERS_SECONDS)
        await pipe.execute()


def reported_counters(client: SyncRedis) -> dict[str, dict[str, int]]:
    """Every node's last report, by node (synchronous: /metrics runs in a thread)."""
    reports = {}
    for key in client.scan_iter(match=COUNTERS + "*", count=100):
        counts: Any = client.hgetall(key)
        node = key.decode()[len(COUNTERS) :]
        reports[node] = {name.decode(): int(value) for name, value in counts.items()}
    return reports
