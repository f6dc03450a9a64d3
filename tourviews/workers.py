"""``--workers N``: N processes serving one listening socket, replaced one at a time.

The supervisor binds the socket and starts each worker as a process of its own
(``tourviews ingest ... --listen-fd FD --ready-fd FD``), which inherits the socket and
says on its pipe once it accepts connections. The kernel hands each new connection
to one of the workers. On SIGHUP the supervisor replaces them one at a time (a rolling
restart, as after an upgrade): it starts the new worker, waits until it accepts, then
stops the old one gracefully (it finishes what it serves; ``BoundedProtocol.shutdown``
closes its kept-alive connections without failing a request). The socket stays open
in the supervisor throughout, so no connection is refused. A worker that dies is
replaced; SIGTERM stops them all.
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
from types import FrameType

log = logging.getLogger("tourviews.workers")

PR_SET_PDEATHSIG = 1  # linux/prctl.h
READY_SECONDS = 60.0  # a worker starts in 2-4 s here (imports, the classifier)
STOP_SECONDS = 30.0


class WorkerFailed(RuntimeError):
    pass


class Supervisor:
    def __init__(
        self,
        argv: Sequence[str],
        listening: socket.socket,
        count: int,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self._argv = list(argv)  # the worker's command, after ``tourviews``
        self._environ = {**os.environ, **(environ or {})}
        self._socket = listening
        self._count = count
        self._workers: list[subprocess.Popen[bytes]] = []
        self._restart = False
        self._stop = False

    def run(self, ready: Callable[[], None] = lambda: None) -> int:
        """Supervise until SIGTERM; ``ready`` is called once the first workers accept."""
        signal.signal(signal.SIGHUP, self._on_hangup)
        signal.signal(signal.SIGTERM, self._on_stop)
        signal.signal(signal.SIGINT, self._on_stop)
        starting = [self._spawn() for _ in range(self._count)]  # together, not one by one
        self._workers = [worker for worker, _ in starting]  # stopped with the rest if one fails
        try:
            for spawned in starting:
                self._ready(*spawned)
        except WorkerFailed as exc:
            log.error("%s", exc)
            self._stop_all()
            return 1
        log.info("%d workers serve %s (SIGHUP: replace them one at a time)",
                 self._count, self._socket.getsockname())  # fmt: skip
        ready()
        while not self._stop:
            if self._restart:
                self._restart = False
                self._roll()
            for index, worker in enumerate(self._workers):
                if worker.poll() is not None and not self._stop:
                    log.warning("worker %d exited with %s: replaced", worker.pid, worker.returncode)
                    replacement = self._start_retrying()
                    if replacement is not None:
                        self._workers[index] = replacement
            time.sleep(0.2)
        self._stop_all()
        return 0

    def _on_hangup(self, *_: object) -> None:
        self._restart = True

    def _on_stop(self, signum: int, frame: FrameType | None) -> None:
        self._stop = True

    def _roll(self) -> None:
        for index, old in enumerate(list(self._workers)):
            if self._stop:
                return
            try:
                self._workers[index] = self._start()
            except WorkerFailed as exc:  # the old one keeps serving
                log.error("rolling restart stopped: %s", exc)
                return
            self._stop_worker(old)
        log.info("rolling restart done: %d new workers", len(self._workers))

    def _start_retrying(self) -> subprocess.Popen[bytes] | None:
        """A replacement, tried until one starts or the supervisor is told to stop."""
        while not self._stop:
            try:
                return self._start()
            except WorkerFailed as exc:
                log.error("%s; trying again", exc)
                time.sleep(1)
        return None

    def _start(self) -> subprocess.Popen[bytes]:
        """A new worker, once it accepts connections on the socket."""
        return self._ready(*self._spawn())

    def _spawn(self) -> tuple[subprocess.Popen[bytes], int]:
        """A new worker, and the pipe on which it says it is ready."""
        read, write = os.pipe()
        listening = self._socket.fileno()
        try:
            worker = subprocess.Popen(
                [sys.executable, "-m", "tourviews", *self._argv,
                 "--listen-fd", str(listening), "--ready-fd", str(write)],
                pass_fds=(listening, write), env=self._environ,
                preexec_fn=_die_with_parent,
            )  # fmt: skip
        finally:
            os.close(write)
        return worker, read

    def _ready(self, worker: subprocess.Popen[bytes], read: int) -> subprocess.Popen[bytes]:
        try:
            deadline = time.monotonic() + READY_SECONDS
            ready: list[int] = []
            while not ready and not self._stop and time.monotonic() < deadline:
                ready, _, _ = select.select([read], [], [], 0.2)  # a stop is not kept waiting
            if not ready or not os.read(read, 1):
                worker.kill()
                worker.wait()
                raise WorkerFailed(f"a worker did not start within {READY_SECONDS:.0f} s")
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
        for worker in self._workers:
            if worker.poll() is None:
                worker.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_SECONDS
        for worker in self._workers:
            try:
                worker.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()


def _die_with_parent() -> None:
    """In the worker, before it runs: SIGTERM when the supervisor dies, even by SIGKILL,
    so that no worker is left holding the port (Linux's PR_SET_PDEATHSIG)."""
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def listen(host: str, port: int, backlog: int) -> socket.socket:
    """The socket every worker accepts on (inherited: not closed on exec)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listening = socket.socket(family, socket.SOCK_STREAM)
    listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listening.bind((host, port))
    listening.listen(backlog)
    listening.set_inheritable(True)
    return listening
