"""``tourviews serve``: uvicorn on the app, with no access log and a clean shutdown.

uvicorn's access log writes every client address, so it is off; the service's own
log lines never carry an address or a user-agent. The connection limits and
timeouts are described in docs/hardening.md.
"""

from __future__ import annotations

import logging.config
import os
import resource
import signal
import socket
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import uvicorn

from tourviews.app import create_app
from tourviews.control import CommandError, remove_server_file, running_server, write_server_file
from tourviews.front import SOCKET_FILE, FromFront
from tourviews.modes import mode_for
from tourviews.node import IngestNode, check_redis, create_node_app, node_secret
from tourviews.protocol import bounded_protocol
from tourviews.quickstart import instructions, quickstart_token
from tourviews.service import Service
from tourviews.settings import REDIS_ENV, Settings
from tourviews.sockets import SocketInUse, check_port, listen, listen_unix, remove_socket_file
from tourviews.storage.clock import SystemClock
from tourviews.storage.errors import StorageBusy
from tourviews.storage.redis_state import RedisUnfit, shown
from tourviews.storage.secret import ENV_VAR as SECRET_ENV
from tourviews.storage.secret import load_secret
from tourviews.workers import Role, Supervisor

START_WAIT_SECONDS = 10.0
BACKLOG = 2_048  # connections the kernel queues before they are accepted
SPARE_FILES = 256  # open files besides connections: the database, its WAL, logs
# The event loop holds the GIL while it serves requests; the writer thread needs it
# between the steps of a commit and, by default, waits up to 5 ms for it each time.
# Every waiting beacon waits with it, so the loop is asked to hand over sooner.
GIL_SWITCH_SECONDS = 0.0005
PRIMARY_READY_SECONDS = 600.0
UNIX_PATH_MAX = 108  # sun_path, with its terminating zero (Linux)

LOGGING: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "loggers": {
        "tourviews": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
        "uvicorn": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
        "uvicorn.access": {"handlers": [], "level": "CRITICAL", "propagate": False},
    },
}


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


def _allow_open_files(needed: int) -> None:
    """Raise the soft limit on open files so that the concurrency limit, not it, is hit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return
    wanted = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    except (ValueError, OSError):  # a system maximum below the hard limit
        wanted = soft
    if wanted < needed:
        logging.getLogger("tourviews").warning(
            "open files are limited to %d: lower --limit-concurrency below it", wanted
        )


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
    if listen_fd is None:
        check_port(settings.host, settings.port)
    logging.config.dictConfig(LOGGING)
    sys.setswitchinterval(GIL_SWITCH_SECONDS)
    _allow_open_files(settings.limit_concurrency + SPARE_FILES)
    supervising = listen_fd is None and settings.workers > 1
    if supervising:
        _check_workers_dir(settings.data_dir)
    _refuse_unfit(lambda: mode_for(settings).check(settings))
    if supervising:
        _supervise_primary(settings, argv)
        return
    service = _open(settings)
    token = quickstart_token(service.registry, settings.data_dir) if quickstart else None
    app: Any = create_app(settings, service=service)
    if listen_fd is not None:  # the primary behind front workers
        app = FromFront(app)

    def ready(url: str) -> None:
        if ready_fd is not None:  # its supervisor says where the service listens
            _say_ready(ready_fd)
            return
        role = service.mode.role
        print(f"tourviews is listening on {url} (data: {settings.data_dir}{role})", flush=True)
        if token is not None:
            print(instructions(url, settings.data_dir, token), flush=True)

    # uvicorn drains on SIGTERM, then raises the signal again for the previous
    # handler: with this one, a drained shutdown ends with exit code 0.
    signal.signal(signal.SIGTERM, lambda *_: None)
    _on_hangup(worker=listen_fd is not None)
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
    if listen_fd is None:
        check_port(settings.host, settings.port, hint="")
    secret = node_secret()
    logging.config.dictConfig(LOGGING)
    _allow_open_files(settings.limit_concurrency + SPARE_FILES)
    _refuse_unfit(lambda: check_redis(settings, secret))
    if listen_fd is None and settings.workers > 1:
        _supervise_nodes(settings)
        return
    app = create_node_app(IngestNode(settings, SystemClock(), secret, primary))

    def ready(url: str) -> None:
        if ready_fd is not None:  # a worker: its supervisor says where it listens
            _say_ready(ready_fd)
            return
        redis_url = shown(settings.redis_url or "")
        print(f"tourviews ingest node is listening on {url} (Redis: {redis_url})", flush=True)

    signal.signal(signal.SIGTERM, lambda *_: None)
    _on_hangup(worker=listen_fd is not None)
    server = NodeServer(_config(app, settings), ready)
    server.run(sockets=None if listen_fd is None else [socket.socket(fileno=listen_fd)])


def _say_ready(ready_fd: int) -> None:
    os.write(ready_fd, b"1")
    os.close(ready_fd)


def _supervise_nodes(settings: Settings) -> None:
    assert settings.redis_url is not None
    listening = listen(settings.host, settings.port, BACKLOG)
    host, port = listening.getsockname()[:2]
    # the URL, which may hold a password, reaches the workers through the environment
    argv = ["ingest", "--redis-durability", settings.redis_durability,
            "--host", settings.host, "--port", str(port), *_connection_argv(settings)]  # fmt: skip
    workers = Role("worker", argv, listening, settings.workers, {REDIS_ENV: settings.redis_url})
    redis_url = shown(settings.redis_url)

    def ready() -> None:  # once its workers accept connections, as a lone node says it
        print(f"tourviews ingest node is listening on http://{host}:{port} "
              f"(Redis: {redis_url}, {settings.workers} workers; {_hangup_hint()})",
              flush=True)  # fmt: skip

    code = Supervisor([workers]).run(ready)
    listening.close()
    if code:
        raise CommandError("the workers did not start (their errors are above)")


def _check_workers_dir(data_dir: Path) -> None:
    """Refuse, before anything is claimed or created, what would stop the primary."""
    if running_server(data_dir) is not None:
        raise CommandError(f"a tourviews server already runs on {data_dir}")
    path = data_dir.resolve() / SOCKET_FILE
    if len(os.fsencode(path)) >= UNIX_PATH_MAX:
        longest = UNIX_PATH_MAX - len(SOCKET_FILE) - 2
        raise CommandError(
            f"the data directory's path is too long for a socket in it: at most {longest} "
            f"characters (--data)"
        )


def _supervise_primary(settings: Settings, argv: Sequence[str]) -> None:
    """The primary on a socket in the data directory, N front workers on the port."""
    assert settings.redis_url is not None
    data_dir = settings.data_dir.resolve()
    path = data_dir / SOCKET_FILE
    data_dir.mkdir(parents=True, exist_ok=True)
    secret = load_secret(data_dir)  # the primary's, which the front workers must share
    try:
        listening = listen(settings.host, settings.port, BACKLOG)
    except OSError as exc:  # taken since it was checked
        raise CommandError(
            f"cannot listen on {settings.host}:{settings.port}: {exc.strerror}"
        ) from None
    try:
        behind, identity = listen_unix(path, BACKLOG)
    except SocketInUse as exc:
        listening.close()
        raise CommandError(f"{exc}: one server per data directory") from None
    except OSError as exc:
        listening.close()
        raise CommandError(f"cannot make the primary's socket {path}: {exc.strerror}") from None
    host, port = listening.getsockname()[:2]
    # no start deadline but a long one: a primary killed while it opens the database
    # would only be started again
    # --workers 1 last, for an abbreviation of the flag (argparse takes the last)
    primary = Role("primary", [*_without_workers(argv), "--workers", "1"], behind, exclusive=True,
                   ready_seconds=PRIMARY_READY_SECONDS)  # fmt: skip
    front = ["ingest", "--redis-durability", settings.redis_durability,
             "--host", settings.host, "--port", str(port), "--primary-socket", str(path),
             *_connection_argv(settings)]  # fmt: skip
    environ = {REDIS_ENV: settings.redis_url, SECRET_ENV: secret.decode()}
    workers = Role("worker", front, listening, settings.workers, environ)

    def ready() -> None:
        print(f"tourviews is listening on http://{host}:{port} (data: {settings.data_dir}, "
              f"primary of the Redis, {settings.workers} workers; {_hangup_hint()})",
              flush=True)  # fmt: skip

    try:
        code = Supervisor([primary, workers]).run(ready)
    finally:
        listening.close()
        behind.close()
        remove_socket_file(path, identity)
    if code:
        raise CommandError("the service did not start (the errors are above)")


def _hangup_hint() -> str:
    return f"kill -HUP {os.getpid()} replaces them one at a time"


def _without_workers(argv: Sequence[str]) -> list[str]:
    """The operator's flags for the primary the supervisor starts, but --workers N."""
    kept: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--workers":
            skip = True
        elif not arg.startswith("--workers="):
            kept.append(arg)
    return kept


def _connection_argv(settings: Settings) -> list[str]:
    """The flags a worker needs besides the URL: its connections and trusted proxies."""
    argv = ["--limit-concurrency", str(settings.limit_concurrency),
            "--timeout-keep-alive", str(settings.timeout_keep_alive),
            "--timeout-request", str(settings.timeout_request)]  # fmt: skip
    for network in settings.trusted_proxies:
        argv += ["--trusted-proxy", str(network)]
    return argv


def _on_hangup(worker: bool) -> None:
    """SIGHUP is the supervisor's to act on (a worker, in a process group of its own,
    gets one only when it is sent to it by hand)."""
    signal.signal(signal.SIGHUP, _hangup_worker if worker else _hangup_alone)


def _hangup_worker(*_: object) -> None:
    logging.getLogger("tourviews").warning(
        "SIGHUP ignored: send it to the supervisor, PID %d, to replace its workers",
        os.getppid(),
    )


def _hangup_alone(*_: object) -> None:
    """SIGHUP would end a lone process by default: an operator expecting a restart."""
    logging.getLogger("tourviews").warning(
        "SIGHUP ignored: only a supervisor (--workers 2 or more) replaces processes on SIGHUP"
    )


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
