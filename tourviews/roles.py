"""The processes ``--workers N`` runs, and the flags each is started with.

``tourviews ingest --workers N`` runs N ingest workers on its port. ``tourviews serve
--workers N`` runs the primary on a socket in the data directory, then N front workers
on the port (docs/scaling.md). Each worker is ``tourviews`` started again
(``tourviews.workers``), its flags rebuilt from the settings; a password in the Redis
URL, and the instance secret, reach it through the environment instead.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from tourviews.control import CommandError, running_server
from tourviews.front import SOCKET_FILE
from tourviews.settings import REDIS_ENV, Settings
from tourviews.sockets import BACKLOG, SocketInUse, listen, listen_unix, remove_socket_file
from tourviews.storage.redis_state import shown
from tourviews.storage.secret import ENV_VAR as SECRET_ENV
from tourviews.storage.secret import load_secret
from tourviews.workers import Role, Supervisor

PRIMARY_READY_SECONDS = 600.0
UNIX_PATH_MAX = 108  # sun_path, with its terminating zero (Linux)


def supervise_nodes(settings: Settings) -> None:
    """N ingest workers on the port."""
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


def check_workers_dir(data_dir: Path) -> None:
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


def supervise_primary(settings: Settings, argv: Sequence[str]) -> None:
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
    """The flags a worker needs besides the URL: its connections, trusted proxies and,
    since it looks up the countries of the beacons it takes, the --geoip database."""
    argv = ["--limit-concurrency", str(settings.limit_concurrency),
            "--timeout-keep-alive", str(settings.timeout_keep_alive),
            "--timeout-request", str(settings.timeout_request)]  # fmt: skip
    for network in settings.trusted_proxies:
        argv += ["--trusted-proxy", str(network)]
    if settings.geoip is not None:
        argv += ["--geoip", str(settings.geoip)]
    return argv
