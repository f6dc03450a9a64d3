"""The shared ledger: every ingest process judges beacons against one Redis.

The Redis backend of ``tourviews.ingest.rules.ledger.Ledger``. Each beacon is one call
of one script (``redis_ledger.lua`` beside this file), which applies the steps of
``tourviews.ingest.rules.steps`` from the throttle on, the pipeline's verdict at its
place, and appends what the beacon became to a Redis Stream, atomically. The calls of
one turn of the event loop go in one pipeline: one round trip for all of them. The
primary drains the stream into DuckDB (``tourviews.ingest.store.drain``).

Redis holds no visitor ID in a key name: keys carry a keyed hash of it. The rows in
the stream carry it, as the database does, until the primary has committed them.
Keys share one hash tag (``{0}``), the partition: a script may only touch keys of one
Redis Cluster slot, and the source network's limit spans tours (docs/scaling.md).
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from importlib import resources
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import NoScriptError, RedisError

from tourviews.ingest.rules.dedup import dedup_key
from tourviews.ingest.rules.ledger import Hit, Unavailable, hour_of
from tourviews.ingest.rules.names import NEW_PER_SOURCE
from tourviews.ingest.rules.throttle import Gcra
from tourviews.ingest.rules.visits import IDLE
from tourviews.ingest.rules.withdrawn import WINDOW as WITHDRAWN_WINDOW
from tourviews.ingest.sources import BOUNDED, DIRECT_VIEW, OTHER
from tourviews.storage.event import encode
from tourviews.storage.outcomes import Outcome
from tourviews.storage.registry import Tour

PREFIX = b"tv:{0}:"  # the partition's hash tag: every key of a call in one slot
STREAM = PREFIX + b"beacons"
CLOCK = PREFIX + b"clock"
DEDUP = PREFIX + b"dd:"
KEEP_MS = 3_600_000  # state outlives its window by an hour: a forward step of Redis' clock
OUTCOMES = {outcome.value.encode(): outcome for outcome in Outcome}
# Each bounded dimension's key tag: the set of a tour's names is PREFIX + tag + tour,
# what one source network brought to it PREFIX + tag (less its ":") + "b:" + tour + ":"
# + network. Keys outlive an upgrade in a running Redis: their bytes must not change.
NAME_KEYS = {"scene": b"sc:", "action": b"ac:", "source": b"so:", "utm_source": b"us:",
             "utm_medium": b"um:", "utm_campaign": b"uc:"}  # fmt: skip
_BROUGHT = {dimension: tag[:-1] + b"b:" for dimension, tag in NAME_KEYS.items()}

SOCKET_SECONDS = 5.0  # a Redis that stops answering: 503 after this, not a hang

Reply = tuple[Outcome, float]  # what became of a beacon, and the seconds to wait if throttled


def connect(url: str) -> Redis:
    """A client for the ledger, which never sends a call again by itself.

    redis-py re-sends a pipeline after a lost connection when the error is one its
    retry settings name (their defaults have changed between versions). A call whose
    reply was lost may have run: sent again, an engage or action beacon (not
    deduplicated) would count twice. So retries are off, and a lost reply is
    answered 503 instead (tests/ingest/test_ledgers.py shows both).
    """
    return Redis.from_url(url, retry=Retry(NoBackoff(), 0), socket_timeout=SOCKET_SECONDS,
                          socket_connect_timeout=SOCKET_SECONDS)  # fmt: skip


async def answers(client: Redis) -> bool:
    """Whether Redis answers now, within a second (/healthz: a load balancer that drops
    unhealthy backends must see a node recover before it sends it beacons again)."""
    try:
        async with asyncio.timeout(1.0):
            await client.ping()
        return True
    except (RedisError, OSError, TimeoutError):
        return False


@dataclass(frozen=True)
class Rules:
    """The settings the script is filled in with."""

    limits: tuple[Gcra, Gcra, Gcra]  # source network, visitor, tour
    window: float  # dedup and rotation, seconds
    rotation_limit: int
    max_names: int

    def script(self) -> str:
        text = resources.files("tourviews.ingest.rules").joinpath("redis_ledger.lua").read_text()
        values = {
            "window": self.window, "idle": IDLE, "rotation_limit": self.rotation_limit,
            "max_names": self.max_names, "new_per_source": NEW_PER_SOURCE,
            "keep_ms": KEEP_MS, "withdrawn_window": WITHDRAWN_WINDOW,
        }  # fmt: skip
        for name, limit in zip(("source", "visitor", "tour"), self.limits, strict=True):
            values[f"{name}_interval"] = limit.interval
            values[f"{name}_tolerance"] = limit.tolerance
        for name, value in values.items():
            text = text.replace("{" + name + "}", repr(float(value)))
        return text


Call = tuple[list[bytes], list[Any]]  # the script's keys and arguments; no keys: a drop


@dataclass
class _Turn:
    calls: list[Call] = field(default_factory=list)
    waiting: list[asyncio.Future[Reply] | None] = field(default_factory=list)


class RedisLedger:
    def __init__(self, client: Redis, rules: Rules, visitor_key: bytes) -> None:
        self._client = client
        self._script = rules.script()
        self._sha: str | None = None  # once loaded; Redis forgets scripts when it restarts
        self._visitor_key = visitor_key
        self._turn: _Turn | None = None
        self.available = True  # whether Redis answered the last round trip (/healthz)

    async def settle(self, hit: Hit, verdict: Outcome | None) -> Outcome:
        beacon, tour = hit.beacon, hit.tour
        assert tour is not None
        visitor = self._hash(beacon.visitor)
        name = beacon.tour.encode()
        scene = (hit.scene or "").encode()
        action = (beacon.action or "").encode()
        source = hit.source
        keys = [
            CLOCK,
            STREAM,
            PREFIX + b"wd:" + visitor,
            PREFIX + b"lim:s:" + source,
            PREFIX + b"lim:v:" + visitor,
            PREFIX + b"lim:t:" + name,
            *names_keys("scene", name, source),
            *names_keys("action", name, source),
            PREFIX + b"rot:" + name + b":" + source,
            dedup_window_key(name, beacon.kind, scene, visitor),
            PREFIX + b"vis:" + name + b":" + visitor,
        ]  # fmt: skip
        args: list[bytes | str] = [
            beacon.kind, verdict.value if verdict is not None else "", scene,
            _scene_rule(tour, hit.scene), action, str(hit.at.toordinal()), encode(hit.as_event()),
            hour_of(hit.at).isoformat(), name, hit.ip_hash, source, visitor,
        ]  # fmt: skip
        came = hit.acquisition
        if came is not None and came is not DIRECT_VIEW:  # the view's bounded values, if any
            for dimension in BOUNDED:
                value = getattr(came, dimension)
                if value is not None and value != OTHER:  # a page's "(other)" is no name
                    keys += names_keys(dimension, name, source)
                    args += [dimension, value]
        outcome, retry_after = await self._call(keys, args)
        hit.retry_after = retry_after
        return outcome

    def refuse(self, outcome: Outcome, tour: str, sender: bytes, at: datetime) -> None:
        fields = [b"drop", outcome.value, b"hour", hour_of(at).isoformat(), b"tour", tour,
                  b"sender", sender]  # fmt: skip
        self._queue(None, [], fields)

    async def withdraw(self, visitor: str, moment: float) -> None:
        keys = [CLOCK, STREAM, PREFIX + b"wd:" + self._hash(visitor)]
        await self._call(keys, ["withdraw"])

    def _hash(self, visitor: str) -> bytes:
        return hashlib.blake2b(visitor.encode(), key=self._visitor_key, digest_size=16).digest()

    def _call(self, keys: list[bytes], args: list[bytes | str]) -> asyncio.Future[Reply]:
        future: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        self._queue(future, keys, args)
        return future

    def _queue(
        self,
        future: asyncio.Future[Reply] | None,
        keys: list[bytes],
        args: list[Any],
    ) -> None:
        if self._turn is None:
            self._turn = _Turn()
            asyncio.get_running_loop().call_soon(self._send_turn)
        self._turn.calls.append((keys, args))
        self._turn.waiting.append(future)

    def _send_turn(self) -> None:
        turn, self._turn = self._turn, None
        if turn is not None:
            asyncio.get_running_loop().create_task(self._send(turn))

    async def _send(self, turn: _Turn) -> None:
        replies: list[Any] = [None] * len(turn.calls)  # None: unanswered
        try:
            replies = await self._execute(turn.calls)
            again = [i for i, reply in enumerate(replies) if isinstance(reply, NoScriptError)]
            if again:  # Redis restarted since the script was loaded: it ran none of those
                self._sha = None
                retried = await self._execute([turn.calls[i] for i in again])
                for i, reply in zip(again, retried, strict=True):
                    replies[i] = reply
            self.available = not any(isinstance(reply, Exception) for reply in replies)
        except (RedisError, OSError):
            self.available = False
        finally:  # whatever happened, no request waits for ever
            for reply, future in zip(replies, turn.waiting, strict=True):
                if future is not None and not future.done():
                    _answer(future, reply)

    async def _execute(self, calls: list[Call]) -> list[Any]:
        """One round trip for all ``calls``: the script's, and the refused beacons' drops."""
        if self._sha is None:
            self._sha = await self._client.script_load(self._script)
        async with self._client.pipeline(transaction=False) as pipe:
            for keys, args in calls:
                if keys:
                    pipe.evalsha(self._sha, len(keys), *keys, *args)
                else:  # a refused beacon's drop
                    pipe.xadd(STREAM, dict(zip(args[::2], args[1::2], strict=True)))
            return list(await pipe.execute(raise_on_error=False))


async def seed_names(
    client: Redis, dimension: str, counted: list[tuple[str, str]], max_names: int
) -> int:
    """Give Redis the names of a dimension of ``NAME_KEYS`` counted before it held them
    (a switch from the embedded mode): a tour's bound then goes on from them. A tour
    whose names Redis holds already keeps them. How many names were given."""
    tag = NAME_KEYS[dimension]
    by_tour: dict[str, list[str]] = {}
    for tour, name in counted:
        names = by_tour.setdefault(tour, [])
        if len(names) < max_names:
            names.append(name)
    given = 0
    for tour, names in by_tour.items():
        key = PREFIX + tag + tour.encode()
        if not await client.exists(key):
            await client.sadd(key, *names)
            given += len(names)
    return given


def names_keys(dimension: str, tour: bytes, source: bytes) -> list[bytes]:
    """The keys of a tour's names of ``dimension`` and of those ``source`` brought it."""
    brought = PREFIX + _BROUGHT[dimension] + tour + b":" + source
    return [PREFIX + NAME_KEYS[dimension] + tour, brought]


def dedup_window_key(tour: bytes, kind: str, scene: bytes, visitor: bytes) -> bytes:
    """The key of a dedup window: ``dedup_key``'s parts joined by ":" (no scene: empty).

    Keys outlive an upgrade in a running Redis: their bytes must not change
    (tests/ingest/test_ledgers.py holds them).
    """
    tour_part, scene_part, visitor_part = dedup_key(tour, kind, scene, visitor)
    return DEDUP + b":".join((tour_part, scene_part or b"", visitor_part))


def _answer(future: asyncio.Future[Reply], reply: Any) -> None:
    try:
        future.set_result((OUTCOMES[reply[0]], int(reply[1]) / 1000))
    except (TypeError, KeyError, IndexError, ValueError):  # unanswered, or an error reply
        future.set_exception(Unavailable("shared state unavailable"))


def _scene_rule(tour: Tour, scene: str | None) -> str:
    """Whether the tour's bound decides the scene ("bound") or its declared list does."""
    if scene is None or tour.scenes is None:
        return "bound"
    return "in" if scene in tour.scenes else "out"
