"""What a serving process sets for itself before it serves: its log, the GIL's switch
interval, its limit on open files, and what SIGTERM and SIGHUP do to it.

uvicorn's access log writes every client address, so it is off; the service's own
log lines never carry an address or a user-agent.
"""

from __future__ import annotations

import logging
import os
import resource
import signal
from typing import Any

SPARE_FILES = 256  # open files besides connections: the database, its WAL, logs
# The event loop holds the GIL while it serves requests; the writer thread needs it
# between the steps of a commit and, by default, waits up to 5 ms for it each time.
# Every waiting beacon waits with it, so the loop is asked to hand over sooner.
GIL_SWITCH_SECONDS = 0.0005

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


def allow_open_files(connections: int) -> None:
    """Raise the soft limit on open files so that the concurrency limit, not it, is hit."""
    needed = connections + SPARE_FILES
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


def take_signals(worker: bool) -> None:
    """SIGTERM stops the server gracefully; SIGHUP is the supervisor's to act on (a
    worker, in a process group of its own, gets one only when it is sent to it by hand)."""
    # uvicorn drains on SIGTERM, then raises the signal again for the previous
    # handler: with this one, a drained shutdown ends with exit code 0.
    signal.signal(signal.SIGTERM, lambda *_: None)
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
