"""``POST /v1/visitor/forget``: a visitor withdraws consent, and their events are erased.

The visitor alone holds their random ID (``beacon.js`` keeps it in the browser), so
whoever sends it is that visitor: the ID is the proof. The request is limited like a
beacon (per source network and per visitor ID), all withdrawals together wait in a
bounded line, and each one erases as an operator's erasure does
(``tourviews.analytics.erasure.forget``), once every beacon accepted before it is committed: a
view still on its way to disk is erased with the rest.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol

import orjson

from tourviews.ingest.http.address import ClientAddress
from tourviews.ingest.http.beacon import (
    ANY_ORIGIN,
    PREFLIGHT,
    Receive,
    Rejected,
    Scope,
    Send,
    answer,
    error_schema,
    page_route,
    read_body,
)
from tourviews.ingest.repeats import RepeatedErrors
from tourviews.ingest.rules.pipeline import Pipeline
from tourviews.ingest.rules.throttle import Limiter, Rate
from tourviews.storage.clock import Clock
from tourviews.storage.outcomes import Outcome
from tourviews.storage.registry import UUID

log = logging.getLogger("tourviews.withdrawal")

WAITING = 64  # withdrawals in line at most; more answer 503
# All withdrawals together: each one scans the events (a few ms at millions of
# events), and the endpoint needs no token, so together they cannot keep the
# database busy erasing. People withdraw rarely; 5 a second is far above that.
ALL = "\0withdrawals"
WITHDRAWALS = Rate(5, 20)


class Settles(Protocol):
    """What stores accepted beacons: the committer, or in Redis mode the stream's drain."""

    async def settled(self) -> None:
        """Wait until every beacon accepted so far is on disk."""
        ...


class WithdrawalEndpoint:
    def __init__(
        self,
        erase: Callable[[str], int],
        pipeline: Pipeline,
        committer: Settles,
        client: ClientAddress,
        clock: Clock,
        limiter: Limiter,
    ) -> None:
        self._erase = erase
        self._limiter = limiter  # per source network, per visitor ID, and ALL
        self._pipeline = pipeline
        self._committer = committer
        self._client = client
        self._clock = clock
        self._waiting = 0
        self.outcomes: Counter[str] = Counter()
        self._errors = RepeatedErrors(log)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        method = scope["method"]
        if method == "OPTIONS":
            return await answer(send, 204, None, ANY_ORIGIN + PREFLIGHT)
        if method != "POST":
            return await answer(send, 405, {"error": "use POST"}, [(b"allow", b"POST, OPTIONS")])
        try:
            status, body, headers = await self._handle(scope, receive)
        except Exception as exc:  # never a traceback: it could carry request data
            self._errors.error(type(exc).__name__, "withdrawal failed with %s", type(exc).__name__)
            status, body, headers = (
                503,
                {"error": "temporarily unavailable"},
                [(b"retry-after", b"1")],
            )
        await answer(send, status, body, [*ANY_ORIGIN, *headers])

    async def _handle(
        self, scope: Scope, receive: Receive
    ) -> tuple[int, dict[str, Any] | None, list[tuple[bytes, bytes]]]:
        headers = dict(scope["headers"])
        now = self._clock.now()
        client = scope.get("client")
        address = self._client.resolve(
            client[0] if client else None, headers.get(b"x-forwarded-for")
        )
        ip_hash, source = self._pipeline.hashes(address, now)
        try:
            visitor = _visitor(await read_body(headers, receive))
        except Rejected as exc:
            self._count(Outcome.INVALID, now, ip_hash)
            return exc.status, exc.body, []
        retry = self._limiter.admit((source, visitor, ALL), self._clock.monotonic())
        if retry > 0:
            self._count(Outcome.THROTTLED, now, source)
            seconds = str(max(1, math.ceil(retry)))
            body = {"error": "rate limited", "retry_after": int(seconds)}
            return 429, body, [(b"retry-after", seconds.encode())]
        if self._waiting >= WAITING:
            return 503, {"error": "too many withdrawals at once"}, [(b"retry-after", b"1")]
        await self._pipeline.ledger.withdraw(visitor, self._clock.monotonic())  # in flight: dropped
        self._waiting += 1
        try:
            await self._committer.settled()  # beacons accepted before this one are on disk
            await asyncio.to_thread(self._erase, visitor)
        finally:
            self._waiting -= 1
        # Counted without the sender's hash: nothing ties a withdrawal to an address.
        self._count(Outcome.WITHDRAWN, now, b"")
        return 204, None, []

    def _count(self, outcome: Outcome, now: datetime, sender: bytes) -> None:
        self.outcomes[outcome] += 1
        self._pipeline.refuse(outcome, "", sender, now)


def _visitor(body: bytes) -> str:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise Rejected(400, "body is not valid JSON") from None
    if not isinstance(data, dict):
        raise Rejected(400, "body must be a JSON object")
    visitor = data.get("visitor")
    if visitor is None:
        raise Rejected(400, "visitor is required", "visitor")
    if not isinstance(visitor, str) or not UUID.fullmatch(visitor):
        raise Rejected(400, "visitor must be a UUID in 8-4-4-4-12 hex form", "visitor")
    return visitor.lower()


_BODY = {
    "type": "object",
    "required": ["visitor"],
    "properties": {"visitor": {"type": "string", "format": "uuid", "pattern": f"^{UUID.pattern}$"}},
}
OPENAPI = page_route(
    "withdraw",
    {
        "summary": "A visitor withdraws consent: erase every event of their visitor ID",
        "description": "What beacon.js's window.tourviews.forget() sends. 204 once the "
        "visitor's events are erased (also when there were none).",
    },
    _BODY,
    {
        "204": {"description": "Erased"},
        "400": error_schema(
            "Not JSON, not an object, or the visitor missing or malformed", "field"
        ),
    },
    "Too many withdrawals at once",
)
