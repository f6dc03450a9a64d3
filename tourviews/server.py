"""``tourviews serve`` and ``tourviews ingest``: the service or an ingest node on uvicorn.

Each command checks what would stop it before anything is created (the port, the
Redis), sets up the process (``tourviews.process``), then either supervises its
workers (``tourviews.roles``) or serves: uvicorn with the bounded protocol
(``tourviews.protocol``), no access log, and a clean shutdown. The connection limits
and timeouts are described in docs/hardening.md.
"""

from __future__ import annotations

import logging.config
import socket
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import uvicorn

from tourviews.app import create_app
from tourviews.control import CommandError, remove_server_file, write_server_file
from tourviews.front import FromFront
from tourviews.ingest.countries import open_countries
from tourviews.modes import mode_for
from tourviews.node import IngestNode, check_redis, create_node_app, node_secret
from tourviews.process import GIL_SWITCH_SECONDS, LOGGING, allow_open_files, take_signals
from tourviews.protocol import bounded_protocol
from tourviews.quickstart import instructions, quickstart_token
from tourviews.roles import check_workers_dir, supervise_nodes, supervise_primary
from tourviews.service import Service
from tourviews.settings import Settings
from tourviews.sockets import BACKLOG, check_port
from tourviews.storage.clock import SystemClock
from tourviews.storage.errors import StorageBusy
from tourviews.storage.redis_state import RedisUnfit, shown
from tourviews.workers import say_ready

START_WAIT_SECONDS = 10.0


class NodeServer(uvicorn.Server):
    """uvicorn that says where it listens once it does."""

    def __init__(self, config: uvicorn.Config, ready: Callable[[str], None]) -> None:
        super().__init__(config)
        self._ready = ready

    async def startup(self, sockets: Any = None) -> None:
        await super().startup(sockets)
        if self.should_exit or not self.servers:
            return
        name = self.servers[0].sockets[0].getsockname()
        if isinstance(name, str):  # a primary behind front workers (control.http_client)
            self.url = f"unix:{name}"
        else:
            host = "127.0.0.1" if name[0] in ("0.0.0.0", "::") else name[0]
            self.url = f"http://{f'[{host}]' if ':' in host else host}:{name[1]}"
        self._ready(self.url)


class Server(NodeServer):
    """uvicorn that also announces itself in the data directory once it listens."""

    def __init__(
        self, config: uvicorn.Config, data_dir: Path, instance: str, ready: Callable[[str], None]
    ) -> None:
        super().__init__(config, ready)  # printed first: who waits for server.json finds it
        self._data_dir = data_dir
        self._instance = instance

    async def startup(self, sockets: Any = None) -> None:
        await super().startup(sockets)
        if self.should_exit or not self.servers:
            return
        write_server_file(self._data_dir, self.url, self._instance)

    async def shutdown(self, sockets: Any = None) -> None:
        remove_server_file(self._data_dir)
        await super().shutdown(sockets)


def _open(settings: Settings) -> Service:
    """The service, waiting a moment if a command briefly holds the database."""
    deadline = time.monotonic() + START_WAIT_SECONDS
    while True:
        try:
            return Service(settings, SystemClock())
        except StorageBusy:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def serve(
    settings: Settings,
    quickstart: bool = False,
    argv: Sequence[str] = (),
    listen_fd: int | None = None,
    ready_fd: int | None = None,
) -> None:
    """``tourviews serve``: the service, or with ``--workers N`` its supervisor.

    The supervisor starts the primary (this function again, given the socket in the
    data directory as ``listen_fd``, and ``argv``, the operator's own flags) and then
    N front workers on the port (``tourviews.front``).
    """
    _check_geoip(settings)
    if listen_fd is None:
        check_port(settings.host, settings.port)
    logging.config.dictConfig(LOGGING)
    sys.setswitchinterval(GIL_SWITCH_SECONDS)
    allow_open_files(settings.limit_concurrency)
    supervising = listen_fd is None and settings.workers > 1
    if supervising:
        check_workers_dir(settings.data_dir)
    _refuse_unfit(lambda: mode_for(settings).check(settings))
    if supervising:
        supervise_primary(settings, argv)
        return
    service = _open(settings)
    token = quickstart_token(service.registry, settings.data_dir) if quickstart else None
    app: Any = create_app(settings, service=service)
    if listen_fd is not None:  # the primary behind front workers
        app = FromFront(app)

    def ready(url: str) -> None:
        if ready_fd is not None:  # its supervisor says where the service listens
            say_ready(ready_fd)
            return
        role = service.mode.role
        print(f"tourviews is listening on {url} (data: {settings.data_dir}{role})", flush=True)
        if token is not None:
            print(instructions(url, settings.data_dir, token), flush=True)

    take_signals(worker=listen_fd is not None)
    server = Server(_config(app, settings), settings.data_dir, service.instance, ready)
    server.run(sockets=None if listen_fd is None else [socket.socket(fileno=listen_fd)])


def serve_node(
    settings: Settings,
    listen_fd: int | None = None,
    ready_fd: int | None = None,
    primary: Path | None = None,
) -> None:
    """``tourviews ingest``: an ingest node, with no data directory.

    With ``--workers N``, this process binds the socket and supervises N workers
    (``tourviews.workers``); each worker is this function again, given the socket's
    ``listen_fd`` and a pipe, ``ready_fd``, to say when it accepts connections. A front
    worker of ``serve --workers N`` is given the primary's socket too, ``primary``.
    """
    _check_geoip(settings)
    if listen_fd is None:
        check_port(settings.host, settings.port, hint="")
    secret = node_secret()
    logging.config.dictConfig(LOGGING)
    allow_open_files(settings.limit_concurrency)
    _refuse_unfit(lambda: check_redis(settings, secret))
    if listen_fd is None and settings.workers > 1:
        supervise_nodes(settings)
        return
    app = create_node_app(IngestNode(settings, SystemClock(), secret, primary))

    def ready(url: str) -> None:
        if ready_fd is not None:  # a worker: its supervisor says where it listens
            say_ready(ready_fd)
            return
        redis_url = shown(settings.redis_url or "")
        print(f"tourviews ingest node is listening on {url} (Redis: {redis_url})", flush=True)

    take_signals(worker=listen_fd is not None)
    server = NodeServer(_config(app, settings), ready)
    server.run(sockets=None if listen_fd is None else [socket.socket(fileno=listen_fd)])


def _check_geoip(settings: Settings) -> None:
    """Refuse an unreadable ``--geoip`` file before anything starts (``GeoipError``, one
    line), rather than in each worker that would open it."""
    countries = open_countries(settings.geoip)
    if countries is not None:
        countries.close()


def _refuse_unfit(check: Callable[[], None]) -> None:
    """Run a check of the Redis before anything starts; its refusal in one line."""
    try:
        check()
    except RedisUnfit as exc:
        raise CommandError(str(exc)) from None


def _config(app: Any, settings: Settings) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http=bounded_protocol(settings.timeout_request),
        ws="none",  # no route speaks WebSocket: an upgrade request is served as plain HTTP
        lifespan="on",
        access_log=False,
        log_config=LOGGING,
        server_header=False,
        limit_concurrency=settings.limit_concurrency,
        backlog=BACKLOG,
        timeout_keep_alive=settings.timeout_keep_alive,
        timeout_graceful_shutdown=10,
        proxy_headers=False,  # the trusted-proxy rule is ours (tourviews.ingest.http.address)
    )
