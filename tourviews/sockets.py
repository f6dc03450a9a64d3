"""The sockets a server listens on: a probe of the port before anything starts, the
TCP socket workers inherit, and the primary's socket file behind front workers."""

from __future__ import annotations

import errno
import os
import socket
from pathlib import Path

from tourviews.control import CommandError

BACKLOG = 2_048  # connections the kernel queues before they are accepted


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def check_port(host: str, port: int, hint: str = " (make run PORT=8001)") -> None:
    """Refuse a port another process listens on before anything is started or created.

    uvicorn binds only after the application has started, so it would print its start
    and then fail; and --quickstart would have made a token that no one sees.
    """
    if port == 0:
        return
    with socket.socket(_family(host), socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise CommandError(
                    f"port {port} is in use: choose another with --port{hint}"
                ) from None
            raise CommandError(f"cannot listen on {host}:{port}: {exc.strerror}") from None


def listen(host: str, port: int, backlog: int) -> socket.socket:
    """The socket every worker accepts on (inherited: not closed on exec)."""
    listening = socket.socket(_family(host), socket.SOCK_STREAM)
    listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listening.bind((host, port))
    listening.listen(backlog)
    listening.set_inheritable(True)
    return listening


class SocketInUse(RuntimeError):
    """Another supervisor listens on the socket file."""


def listen_unix(path: Path, backlog: int) -> tuple[socket.socket, tuple[int, int]]:
    """A socket in the file system that only this user may connect to (inherited), and
    the file's identity (``remove_socket_file``).

    A socket file left by a supervisor that was killed is replaced; one that another
    supervisor listens on (it accepts a connection, even while its primary restarts)
    is not."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(str(path))
        except (FileNotFoundError, ConnectionRefusedError):
            pass
        else:
            raise SocketInUse(f"another tourviews server listens on {path}")
    path.unlink(missing_ok=True)
    listening = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    previous = os.umask(0o177)  # created private: no moment in which others may connect
    try:
        listening.bind(str(path))
    finally:
        os.umask(previous)
    listening.listen(backlog)
    listening.set_inheritable(True)
    made = os.stat(path)
    return listening, (made.st_dev, made.st_ino)


def remove_socket_file(path: Path, identity: tuple[int, int]) -> None:
    """Remove the socket file if it is still the one made (not a later supervisor's)."""
    try:
        found = os.stat(path)
        if (found.st_dev, found.st_ino) == identity:
            path.unlink()
    except OSError:
        pass
