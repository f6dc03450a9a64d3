"""``serve --workers N``: front workers hand what is not a beacon to the primary.

Only one process may own the DuckDB file, so the owner and operator APIs, the
dashboard and the visitor's erasure are served by the primary alone. It listens on a
socket in the data directory, which its supervisor holds open; the front workers
serve beacons themselves (through Redis) and forward every other request to it.

While the primary restarts (a rolling restart replaces it last), new connections to
its socket wait in the kernel's queue, so a forwarded request waits instead of
failing; the beacons never pass through it. A request the primary has not answered
within ``WAIT_SECONDS`` is answered 503.

The front resolves the client's address (with its trusted proxies) and hands it on
in ``CLIENT_HEADER``, which it always replaces. The primary believes that header
because its socket is the front's alone (a file only its user may open).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import httpx

from tourviews.ingest.http.address import ClientAddress
from tourviews.ingest.http.beacon import ANY_ORIGIN, Receive, Scope, Send, answer

log = logging.getLogger("tourviews.front")

SOCKET_FILE = "primary.sock"
CLIENT_HEADER = b"x-tourviews-client"
HEALTH_SECONDS = 1.0  # a front's /healthz does not wait longer for the primary's
WAIT_SECONDS = 60.0  # a restart of the primary: its stop (up to 10 s) and start (~4 s)
# Headers of one hop (RFC 9110, 7.6.1), and those the front decides itself; in an
# answer also Date, which the front's server writes on every answer.
NOT_FORWARDED = frozenset(
    {b"connection", b"keep-alive", b"proxy-connection", b"te", b"trailer",
     b"transfer-encoding", b"upgrade", b"proxy-authorization", b"proxy-authenticate",
     b"x-forwarded-for", CLIENT_HEADER}
)  # fmt: skip
NOT_ANSWERED = NOT_FORWARDED | {b"date"}


class PrimaryProxy:
    """Forwards a request to the primary's socket and streams its answer back."""

    def __init__(self, path: Path, address: ClientAddress) -> None:
        self.path = path
        self._address = address
        # A connection per request: one kept alive to a primary that is stopping could
        # close under a request, and the socket is local (a connect costs microseconds).
        # No bound on connections either: the front's --limit-concurrency is the bound.
        # (httpx takes the limits from the transport when it is given one.)
        limits = httpx.Limits(max_connections=None, max_keepalive_connections=0)
        self._client = httpx.AsyncClient(
            transport=httpx.AsyncHTTPTransport(uds=str(path), limits=limits),
            timeout=httpx.Timeout(WAIT_SECONDS, connect=5.0),
            trust_env=False,
        )

    async def close(self) -> None:
        await self._client.aclose()

    async def answers(self) -> bool:
        """Whether the primary answers its /healthz within ``HEALTH_SECONDS``."""
        try:
            answer = await self._client.get("http://primary/healthz", timeout=HEALTH_SECONDS)
        except httpx.HTTPError:
            return False
        return answer.status_code == 200

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(name, value) for name, value in scope["headers"] if name not in NOT_FORWARDED]
        peer = scope.get("client")
        forwarded = dict(scope["headers"]).get(b"x-forwarded-for")
        client = self._address.resolve(peer[0] if peer else None, forwarded)
        if client is not None:
            headers.append((CLIENT_HEADER, client.encode("latin-1")))  # as it came
        query = scope.get("query_string", b"")
        path = scope.get("raw_path") or scope["path"].encode()
        target = httpx.URL(scheme="http", host="primary",
                           raw_path=path + (b"?" + query if query else b""))  # fmt: skip
        first = await receive()
        start: bytes = first.get("body", b"")
        body = _rest(start, receive) if first.get("more_body") else start
        request = self._client.build_request(scope["method"], target, headers=headers, content=body)
        try:
            response = await self._client.send(request, stream=True)
        except ClientGone:  # nothing to answer, and nothing the primary should act on
            return None
        except httpx.TimeoutException:
            return await _unavailable(send, "the primary did not answer in time")
        except httpx.HTTPError as exc:
            log.warning("the primary cannot be reached: %s", type(exc).__name__)
            return await _unavailable(send, "the primary is unavailable")
        try:
            kept = [(name, value) for name, value in response.headers.raw
                    if name.lower() not in NOT_ANSWERED]  # fmt: skip
            await send({"type": "http.response.start", "status": response.status_code,
                        "headers": kept})  # fmt: skip
            async for chunk in response.aiter_raw():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        except httpx.HTTPError as exc:
            # The answer has begun: the client sees its connection close, as it would
            # from the primary itself. Logged without a traceback (it could carry data).
            log.warning("the primary's answer broke off: %s", type(exc).__name__)
        finally:
            await response.aclose()
        return None


class ClientGone(Exception):
    """The client went away while its request's body was being forwarded."""


async def _rest(first: bytes, receive: Receive) -> AsyncIterator[bytes]:
    """The request's body as it arrives: a large one is not held whole by the front.
    A client gone mid-body raises: a cut body must not reach the primary as whole."""
    yield first
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        yield message.get("body", b"")
        if not message.get("more_body"):
            return


async def _unavailable(send: Send, reason: str) -> None:
    await answer(send, 503, {"error": reason}, [*ANY_ORIGIN, (b"retry-after", b"1")])


class FromFront:
    """The primary's application behind front workers: each request's client is the
    address its front resolved (``CLIENT_HEADER``), as if it had come straight."""

    def __init__(self, app: object) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = scope["headers"]
            client = next((value for name, value in headers if name == CLIENT_HEADER), None)
            scope = {
                **scope,
                "client": None if client is None else (client.decode("latin-1"), 0),
                "headers": [(name, value) for name, value in headers if name != CLIENT_HEADER],
            }
        await self.app(scope, receive, send)  # type: ignore[operator]
