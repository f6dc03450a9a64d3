"""The HTTP protocol uvicorn runs per connection, with the bounds httptools lacks.

Why the bounds are ours: docs/hardening.md. The protocol overrides uvicorn's parser
callbacks and shutdown, none of its private names; they are not uvicorn's public API,
so ``pyproject.toml`` pins uvicorn to the minor version they are tested with
(``tests/tourviews/test_uvicorn_pin.py``).
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from tourviews.ingest.http.beacon import ANY_ORIGIN, answer

MAX_HEAD_BYTES = 16_384  # request line and headers: h11's default, far above what browsers send
DRAIN_SECONDS = 1.0  # a stopping worker's idle kept-alive connections stay open this long
HEAD_TOO_LARGE = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
    b"content-length: 0\r\nconnection: close\r\n\r\n"
)


class BoundedProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with the two bounds it lacks.

    httptools takes a request head of any size, and gathering it costs time quadratic
    in its size: one client sending a 64 MB URL stalled every other request for
    seconds. And no clock runs while a request arrives (uvicorn's keep-alive timeout
    starts after a response), so a client sending a byte now and then would hold its
    connection, and a place under the concurrency limit, for ever. Here a request must
    arrive whole within ``request_timeout`` of the connection opening, of the previous
    response, or of its own first byte, whichever is first; else the connection closes.
    """

    request_timeout = 10.0
    _deadline: asyncio.TimerHandle | None = None
    _head_bytes = 0
    _in_head = True
    _draining = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._start_clock()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_clock()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        in_head = self._in_head
        super().data_received(data)
        if in_head and self._in_head and not self.transport.is_closing():
            self._head_bytes += len(data)
            if self._head_bytes > MAX_HEAD_BYTES:
                self.transport.write(HEAD_TOO_LARGE)
                self.transport.close()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_bytes = 0
        self._in_head = True
        self._start_clock()

    def on_headers_complete(self) -> None:
        self._in_head = False
        limit = self.limit_concurrency
        if limit is not None and (len(self.connections) >= limit or len(self.tasks) >= limit):
            # Beyond --limit-concurrency uvicorn would run its plain-text 503: this one
            # answers in the contract's form, for this request alone.
            app, self.app, self.limit_concurrency = self.app, _over_the_limit, None
            try:
                super().on_headers_complete()
            finally:
                self.app, self.limit_concurrency = app, limit
        else:
            super().on_headers_complete()
        if self._draining and self.cycle is not None:
            self.cycle.keep_alive = False  # answered with Connection: close, then closed

    def shutdown(self) -> None:
        """A graceful stop (one worker of a rolling restart) leaves no request failed.

        uvicorn closes an idle kept-alive connection at once, but its client may be
        sending on it at that very moment, and that request would fail. Here the
        connection serves one more request, answered with ``Connection: close`` (the
        client reconnects, to another worker), or closes after ``DRAIN_SECONDS`` idle.
        """
        self._draining = True
        if self.cycle is None or self.cycle.response_complete:
            self.loop.call_later(DRAIN_SECONDS, self._close_if_idle)
        else:
            self.cycle.keep_alive = False

    def _close_if_idle(self) -> None:
        if self.cycle is None or self.cycle.response_complete:
            self.transport.close()

    def on_message_complete(self) -> None:
        self._stop_clock()
        super().on_message_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self.timeout_keep_alive_task is not None:  # idle, waiting for the next request
            self._start_clock()

    def _start_clock(self) -> None:
        if self._deadline is None:
            self._deadline = self.loop.call_later(self.request_timeout, self._time_out)

    def _stop_clock(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _time_out(self) -> None:
        self._deadline = None
        self.transport.close()


async def _over_the_limit(scope: Any, receive: Any, send: Any) -> None:
    """The 503 beyond the concurrency limit, in the contract's form: JSON, Retry-After."""
    headers = [*ANY_ORIGIN, (b"retry-after", b"1"), (b"connection", b"close")]
    await answer(send, 503, {"error": "too many connections"}, headers)


def bounded_protocol(request_timeout: float) -> type[BoundedProtocol]:
    """The protocol class uvicorn instantiates per connection, with this timeout."""
    return type("BoundedProtocol", (BoundedProtocol,), {"request_timeout": request_timeout})
