"""``POST /v1/beacon`` as a lean ASGI endpoint.

The beacon is the one hot route, so it skips FastAPI's routing and dependency
machinery (a large share of a request's cost) and speaks ASGI directly: one pass
over the headers, a body read that stops at the size limit, orjson, and the
pipeline. Every other route is FastAPI's.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson

from tourviews.ingest.agents.classifier import AgentClassifier
from tourviews.ingest.beacon import KINDS, MAX_BYTES, RANDOM_UUID, BeaconError, parse_beacon
from tourviews.ingest.http.address import ClientAddress
from tourviews.ingest.repeats import RepeatedErrors
from tourviews.ingest.rules.ledger import Hit, Unavailable
from tourviews.ingest.rules.pipeline import Pipeline
from tourviews.storage.clock import Clock
from tourviews.storage.errors import StorageError
from tourviews.storage.outcomes import Outcome

log = logging.getLogger("tourviews.beacon")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

JSON_TYPES = (b"application/json", b"text/plain")
ANY_ORIGIN = [(b"access-control-allow-origin", b"*")]
PREFLIGHT = [
    (b"access-control-allow-methods", b"POST, OPTIONS"),
    (b"access-control-allow-headers", b"Content-Type"),
    (b"access-control-max-age", b"86400"),
]
JSON_HEADER = (b"content-type", b"application/json")


class Rejected(Exception):
    """A beacon answered with an error before the pipeline; counted as ``invalid``."""

    def __init__(self, status: int, error: str, field: str | None = None) -> None:
        self.status = status
        self.body = {"error": error, "field": field} if status == 400 else {"error": error}


class BeaconEndpoint:
    def __init__(
        self,
        classifier: AgentClassifier,
        pipeline: Pipeline,
        client: ClientAddress,
        clock: Clock,
    ) -> None:
        self._classifier = classifier
        self._pipeline = pipeline
        self._client = client
        self._clock = clock
        self.outcomes: Counter[str] = Counter()
        self._errors = RepeatedErrors(log)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self._handle(scope, receive, send)
        except Exception as exc:
            # Never a traceback: it could carry request data. The type and place are enough.
            where = exc.__traceback__
            while where is not None and where.tb_next is not None:
                where = where.tb_next
            line = f"{where.tb_frame.f_code.co_filename}:{where.tb_lineno}" if where else "?"
            kind = f"{type(exc).__name__} at {line}"
            self._errors.error(kind, "beacon failed with %s", kind)
            await answer(send, 503, {"error": "temporarily unavailable"}, [(b"retry-after", b"1")])

    async def _handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = dict(scope["headers"])  # the few we read are not repeated headers
        origin = headers.get(b"origin")
        method = scope["method"]
        if method == "OPTIONS":
            allow = ANY_ORIGIN
            if origin is not None:
                allow = [(b"access-control-allow-origin", origin), (b"vary", b"Origin")]
            return await answer(send, 204, None, allow + PREFLIGHT)
        if method != "POST":
            allowed = [(b"allow", b"POST, OPTIONS")]
            return await answer(send, 405, {"error": "use POST"}, allowed)

        now = self._clock.now()
        client = scope.get("client")
        address = self._client.resolve(
            client[0] if client else None, headers.get(b"x-forwarded-for")
        )
        try:
            beacon = parse_beacon(await read_body(headers, receive))
        except (Rejected, BeaconError) as exc:
            rejected = exc if isinstance(exc, Rejected) else Rejected(400, exc.message, exc.field)
            self.outcomes[Outcome.INVALID] += 1
            ip_hash = self._pipeline.hash_address(address, now)
            self._pipeline.refuse(Outcome.INVALID, "", ip_hash, now)
            return await answer(send, rejected.status, rejected.body, ANY_ORIGIN)

        user_agent = headers.get(b"user-agent", b"").decode("latin-1")
        classify = self._classifier
        agent = classify.cached(user_agent) or await classify.classify_soon(user_agent)
        page = None if origin is None else origin.decode("latin-1")
        try:
            hit = self._pipeline.identify(
                beacon, address, agent, now, self._clock.monotonic(), page
            )
        except StorageError:  # the day's salt is in a Redis that cannot be reached now
            self.outcomes["unavailable"] += 1
            away = {"error": "shared state unavailable"}
            return await answer(send, 503, away, [*ANY_ORIGIN, (b"retry-after", b"1")])
        cors = _cors(hit, origin)
        try:
            outcome = await self._pipeline.settle(hit)
        except Unavailable as exc:
            self.outcomes["unavailable"] += 1
            return await answer(send, 503, {"error": exc.error}, [*cors, (b"retry-after", b"1")])
        self.outcomes[outcome] += 1
        if outcome is Outcome.THROTTLED:
            retry = str(max(1, math.ceil(hit.retry_after)))
            body: dict[str, Any] = {"error": "rate limited", "retry_after": int(retry)}
            return await answer(send, 429, body, [*cors, (b"retry-after", retry.encode())])
        status, body_ = ANSWERS.get(outcome, (204, None))
        await answer(send, status, body_, cors)


# What a beacon's outcome answers, but 204 (every other outcome: stored, counted or
# not, so that a sender cannot tell how it was classified) and 429 (with its wait).
ANSWERS: dict[Outcome, tuple[int, dict[str, Any] | None]] = {
    Outcome.UNKNOWN_TOUR: (404, {"error": "unknown tour", "field": "tour"}),
}


def _cors(hit: Hit, origin: bytes | None) -> list[tuple[bytes, bytes]]:
    tour = hit.tour
    if tour is None or not tour.origins:
        return ANY_ORIGIN
    if origin is not None and tour.allows(origin.decode("latin-1")):
        return [(b"access-control-allow-origin", origin), (b"vary", b"Origin")]
    return [(b"vary", b"Origin")]


def declared_length(value: bytes) -> int:
    """A Content-Length the HTTP parser accepted, as a number.

    The parser lets leading zeros through, and ``int()`` refuses more than 4,300
    digits: without the zeros, anything longer than a 64-bit number is over any limit.
    """
    digits = value.strip().lstrip(b"0") or b"0"
    return int(digits) if len(digits) <= 19 else 2**63


async def read_body(headers: dict[bytes, bytes], receive: Receive) -> bytes:
    """The request body, refused (413) as soon as it would pass the limit."""
    content_type = headers.get(b"content-type", b"").split(b";", 1)[0].strip().lower()
    if content_type not in JSON_TYPES:
        raise Rejected(415, "Content-Type must be application/json or text/plain")
    declared = headers.get(b"content-length")
    if declared is not None and declared_length(declared) > MAX_BYTES:
        raise Rejected(413, f"body must be at most {MAX_BYTES} bytes")
    body = b""
    while True:
        message = await receive()
        if message["type"] != "http.request":
            raise Rejected(400, "the client went away")
        chunk: bytes = message.get("body", b"")
        body += chunk
        if len(body) > MAX_BYTES:
            raise Rejected(413, f"body must be at most {MAX_BYTES} bytes")
        if not message.get("more_body", False):
            return body


async def answer(
    send: Send, status: int, body: dict[str, Any] | None, headers: list[tuple[bytes, bytes]]
) -> None:
    if body is None:
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": b""})
        return
    payload = orjson.dumps(body)
    headers = [*headers, JSON_HEADER, (b"content-length", str(len(payload)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


def error_schema(description: str, *required: str) -> dict[str, Any]:
    properties: dict[str, Any] = {
        "error": {"type": "string"},
        "field": {"type": ["string", "null"]},
        "retry_after": {"type": "integer"},
    }
    schema = {"type": "object", "required": ["error", *required], "properties": properties}
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_BEACON_SCHEMA = {
    "type": "object",
    "required": ["tour", "visitor"],
    "properties": {
        "tour": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$"},
        "visitor": {"type": "string", "format": "uuid", "pattern": f"^{RANDOM_UUID.pattern}$"},
        "event": {
            "type": "string",
            "enum": list(KINDS),
            "default": "view",
        },
        "scene": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$"},
        "seconds": {
            "type": "integer",
            "minimum": 1,
            "maximum": 1800,
            "description": "engage: visible seconds since the last engage beacon (required)",
        },
        "name": {
            "type": "string",
            "pattern": "^[A-Za-z0-9_-]{1,64}$",
            "description": "action: its name (required)",
        },
    },
}
_RETRY = {"Retry-After": {"schema": {"type": "integer"}, "description": "whole seconds"}}


def page_route(
    operation: str,
    post: dict[str, Any],
    body: dict[str, Any],
    answers: dict[str, Any],
    busy: str,
) -> dict[str, Any]:
    """The OpenAPI entry of a route a page calls, served outside FastAPI: its POST (a
    JSON or text/plain ``body`` of at most 2,048 bytes, its own ``answers``, ``busy``
    for 503) and its CORS preflight."""
    return {
        "post": {
            "tags": ["beacon"],
            **post,
            "operationId": operation,
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": body}, "text/plain": {"schema": body}},
            },
            "responses": {
                **answers,
                "413": error_schema("The body is over 2,048 bytes"),
                "415": error_schema("Another content type"),
                "429": {
                    **error_schema("A rate limit is exceeded", "retry_after"),
                    "headers": _RETRY,
                },
                "503": {**error_schema(busy), "headers": _RETRY},
            },
        },
        "options": {
            "tags": ["beacon"],
            "summary": "CORS preflight",
            "operationId": f"{operation}_preflight",
            "responses": {"204": {"description": "Allowed methods and headers"}},
        },
    }


OPENAPI = page_route(
    "beacon",
    {
        "summary": "Accept a beacon from a tour page",
        "description": "At most 2,048 bytes. 204 once the event is committed to disk, "
        "whether or not it was counted.",
    },
    _BEACON_SCHEMA,
    {
        "204": {"description": "Accepted and committed"},
        "400": error_schema("Not JSON, not an object, or a field missing or malformed", "field"),
        "404": error_schema("The tour is not registered", "field"),
    },
    "The write queue is full or storage failed",
)
