"""``tourviews serve``: uvicorn on the app, with no access log and a clean shutdown.

uvicorn's access log writes every client address, so it is off; the service's own
log lines never carry an address or a user-agent.
"""

from __future__ import annotations

import contextlib
import logging.config
import shlex
import shutil
import signal
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import uvicorn

from storage.clock import SystemClock
from storage.errors import StorageBusy
from tourviews.app import create_app
from tourviews.control import remove_server_file, write_server_file
from tourviews.service import Service
from tourviews.settings import Settings

START_WAIT_SECONDS = 10.0
DEMO_TOUR = "demo"
DEMO_AGENT = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)

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


class Server(uvicorn.Server):
    """uvicorn that announces itself in the data directory once it listens."""

    def __init__(self, config: uvicorn.Config, data_dir: Path, ready: Callable[[str], None]):
        super().__init__(config)
        self._data_dir = data_dir
        self._ready = ready

    async def startup(self, sockets: Any = None) -> None:
        await super().startup(sockets)
        if self.should_exit or not self.servers:
            return
        host, port = self.servers[0].sockets[0].getsockname()[:2]
        host = "127.0.0.1" if host in ("0.0.0.0", "::") else host
        url = f"http://{f'[{host}]' if ':' in host else host}:{port}"
        write_server_file(self._data_dir, url)
        self._ready(url)

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


def serve(settings: Settings, quickstart: bool = False) -> None:
    logging.config.dictConfig(LOGGING)
    service = _open(settings)
    token = None
    if quickstart and not service.registry.tours and not service.registry.has_tokens():
        service.registry.put_tour(DEMO_TOUR, DEMO_TOUR)
        token = service.registry.create_token(DEMO_TOUR, admin=True)
    app = create_app(settings, service=service)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        access_log=False,
        log_config=LOGGING,
        server_header=False,
        timeout_keep_alive=5,
        timeout_graceful_shutdown=10,
        proxy_headers=False,  # the trusted-proxy rule is ours (ingest.client)
    )

    def ready(url: str) -> None:
        print(f"tourviews is listening on {url} (data: {settings.data_dir})", flush=True)
        if token is not None:
            print(_quickstart(url, settings.data_dir, token), flush=True)

    # uvicorn drains on SIGTERM, then raises the signal again for the previous
    # handler: with this one, a drained shutdown ends with exit code 0.
    signal.signal(signal.SIGTERM, lambda *_: None)
    Server(config, settings.data_dir, ready).run()


def _quickstart(url: str, data_dir: Path, token: str) -> str:
    program = shutil.which("tourviews") or sys.argv[0]
    with contextlib.suppress(ValueError):  # outside the working directory: keep it absolute
        program = str(Path(program).resolve().relative_to(Path.cwd()))
    data = "" if data_dir == Path("data") else f" --data {shlex.quote(str(data_dir))}"
    beacon = f'{{"tour":"{DEMO_TOUR}","visitor":"{uuid.uuid4()}"}}'
    return f"""
First start on an empty data directory: registered tour "{DEMO_TOUR}" (organization
"{DEMO_TOUR}") and created an admin token. It is shown this once:

    {token}

Send a view (answers 204):

    curl -i -X POST {url}/v1/beacon -H 'Content-Type: text/plain' \\
      -A '{DEMO_AGENT}' \\
      -d '{beacon}'

Read it (while this server runs, in another terminal):

    {shlex.quote(program)} stats {DEMO_TOUR}{data}
"""
