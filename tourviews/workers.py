"""``--workers N``: processes serving one listening socket, replaced one at a time.

The supervisor binds each socket and starts each worker as a process of its own
(``tourviews ingest ... --listen-fd FD --ready-fd FD``), which inherits the socket and
says on its pipe once it accepts connections. The kernel hands each new connection
to one of the workers. On SIGHUP the supervisor replaces them one at a time (a rolling
restart, as after an upgrade): it starts the new worker, waits until it accepts, then
stops the old one gracefully (it finishes what it serves; ``BoundedProtocol.shutdown``
closes its kept-alive connections without failing a request). The socket stays open
in the supervisor throughout, so no connection is refused. A worker that dies is
replaced; SIGTERM stops them all.

Workers come in roles, started in order and replaced and stopped in the reverse
order. ``serve --workers N`` has two: the primary, which owns the database and so
is *exclusive* (the old one stops before the new one starts; connections to its socket
wait in the kernel's queue meanwhile), and N front workers in front of it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import FrameType

log = logging.getLogger("tourviews.workers")

PR_SET_PDEATHSIG = 1  # linux/prctl.h
READY_SECONDS = 60.0  # a worker starts in 2-4 s here (imports, the classifier)
STOP_SECONDS = 30.0


class WorkerFailed(RuntimeError):
    pass


class Stopped(Exception):
    """The supervisor was told to stop while a worker started."""


@dataclass
class Role:
    """Workers started from one command, serving one socket."""

    name: str  # in the log: "worker", "primary"
    argv: list[str]  # the command, after ``tourviews``
    listening: socket.socket
    count: int = 1
    environ: Mapping[str, str] = field(default_factory=dict)
    exclusive: bool = False  # never two at once: a rolling restart stops the old one first
    ready_seconds: float = READY_SECONDS
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)


class Supervisor:
    def __init__(self, roles: Sequence[Role]) -> None:
        self._roles = list(roles)
        self._restart = False
        self._stop = False

    def run(self, ready: Callable[[], None] = lambda: None) -> int:
        """Supervise until SIGTERM; ``ready`` is called once the first workers accept."""
        signal.signal(signal.SIGHUP, self._on_hangup)
        signal.signal(signal.SIGTERM, self._on_stop)
        signal.signal(signal.SIGINT, self._on_stop)
        try:
            for role in self._roles:
                starting = [self._spawn(role) for _ in range(role.count)]  # together
                role.workers = [worker for worker, _ in starting]  # stopped if one fails
                for spawned in starting:
                    self._ready(role, *spawned)
        except WorkerFailed as exc:
            log.error("%s", exc)
            self._stop_all()
            return 1
        except Stopped:
            log.info("stopped before every worker had started")
            self._stop_all()
            return 0
        for role in self._roles:
            log.info("%d %s%s serve%s %s", role.count, role.name, "s" * (role.count > 1),
                     "s" * (role.count == 1), _where(role.listening))  # fmt: skip
        log.info("SIGHUP replaces them one at a time")
        ready()
        while not self._stop:
            if self._restart:
                self._restart = False
                self._roll()
            for role in self._roles:
                for index, worker in enumerate(role.workers):
                    if worker.poll() is not None and not self._stop:
                        log.warning("%s %d exited with %s: replaced",
                                    role.name, worker.pid, worker.returncode)  # fmt: skip
                        replacement = self._start_retrying(role)
                        if replacement is not None:
                            role.workers[index] = replacement
            time.sleep(0.2)
        self._stop_all()
        return 0

    def _on_hangup(self, *_: object) -> None:
        self._restart = True

    def _on_stop(self, signum: int, frame: FrameType | None) -> None:
        self._stop = True

    def _roll(self) -> None:
        log.info("rolling restart: replacing the workers one at a time")
        try:
            self._replace_all()
        except Stopped:
            return
        replaced = (f"{role.count} {role.name}{'s' * (role.count > 1)}" for role in self._roles)
        log.info("rolling restart done: %s replaced", ", ".join(replaced))

    def _replace_all(self) -> None:
        for role in reversed(self._roles):
            for index, old in enumerate(list(role.workers)):
                if self._stop:
                    raise Stopped
                if role.exclusive:
                    self._stop_worker(old)
                    new = self._start_retrying(role)
                    if new is None:
                        raise Stopped
                    role.workers[index] = new
                    continue
                try:
                    role.workers[index] = self._start(role)
                except WorkerFailed as exc:  # the old one keeps serving
                    log.error("rolling restart stopped: %s", exc)
                    raise Stopped from None
                self._stop_worker(old)

    def _start_retrying(self, role: Role) -> subprocess.Popen[bytes] | None:
        """A replacement, tried until one starts or the supervisor is told to stop."""
        while not self._stop:
            try:
                return self._start(role)
            except WorkerFailed as exc:
                log.error("%s; trying again", exc)
                time.sleep(1)
            except Stopped:
                break
        return None

    def _start(self, role: Role) -> subprocess.Popen[bytes]:
        """A new worker, once it accepts connections on the socket."""
        return self._ready(role, *self._spawn(role))

    def _spawn(self, role: Role) -> tuple[subprocess.Popen[bytes], int]:
        """A new worker, and the pipe on which it says it is ready."""
        read, write = os.pipe()
        listening = role.listening.fileno()
        try:
            worker = subprocess.Popen(
                [sys.executable, "-m", "tourviews", *role.argv,
                 "--listen-fd", str(listening), "--ready-fd", str(write)],
                pass_fds=(listening, write), env={**os.environ, **role.environ},
                preexec_fn=_die_with_parent,
                process_group=0,  # Ctrl-C reaches the supervisor alone, which stops in order
            )  # fmt: skip
        finally:
            os.close(write)
        return worker, read

    def _ready(
        self, role: Role, worker: subprocess.Popen[bytes], read: int
    ) -> subprocess.Popen[bytes]:
        try:
            deadline = time.monotonic() + role.ready_seconds
            ready: list[int] = []
            while not ready and not self._stop and time.monotonic() < deadline:
                ready, _, _ = select.select([read], [], [], 0.2)  # a stop is not kept waiting
            if not ready or not os.read(read, 1):
                self._stop_worker(worker)  # gracefully: a primary may hold the database
                if not ready and self._stop:
                    raise Stopped
                if ready:  # its end of the pipe closed: it exited
                    raise WorkerFailed(f"a {role.name} exited with {worker.returncode} "
                                       f"before it accepted connections")  # fmt: skip
                raise WorkerFailed(f"a {role.name} did not start within {role.ready_seconds:.0f} s")
        finally:
            os.close(read)
        return worker

    def _stop_worker(self, worker: subprocess.Popen[bytes]) -> None:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(STOP_SECONDS)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()

    def _stop_all(self) -> None:
        """The last role first: front workers finish what the primary serves them."""
        for role in reversed(self._roles):
            for worker in role.workers:
                if worker.poll() is None:
                    worker.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + STOP_SECONDS
            for worker in role.workers:
                try:
                    worker.wait(max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    worker.kill()
                    worker.wait()


def say_ready(ready_fd: int) -> None:
    """In a worker: tell the supervisor, on the pipe it gave, that it accepts connections."""
    os.write(ready_fd, b"1")
    os.close(ready_fd)


def _where(listening: socket.socket) -> str:
    name = listening.getsockname()
    return name if isinstance(name, str) else f"{name[0]}:{name[1]}"


def _die_with_parent() -> None:
    """In the worker, before it runs: SIGTERM when the supervisor dies, even by SIGKILL,
    so that no worker is left holding the port (Linux's PR_SET_PDEATHSIG)."""
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
