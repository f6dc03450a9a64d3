"""Helpers of the weekly report's tests: a real SMTP server, and what an HTML report says."""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from html.parser import HTMLParser
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


@dataclass
class Received:
    sender: str
    recipients: list[str]
    message: EmailMessage


@dataclass
class Mailbox:
    """An aiosmtpd server on the loopback and what it received; ``url`` sends to it."""

    url: str
    received: list[Received] = field(default_factory=list)
    logins: list[tuple[str, str]] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = message_from_bytes(envelope.original_content, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), parsed))
        return "250 Message accepted for delivery"


def free_port() -> int:
    """A loopback port nothing listens on (as long as nobody takes it meanwhile)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def mailbox(tls: ssl.SSLContext | None = None, password: str | None = None) -> Iterator[Mailbox]:
    """A running SMTP server: plain, or implicit TLS with ``tls``; with ``password``, every
    login must give it (the user is recorded)."""
    port = free_port()
    box = Mailbox(f"{'smtps' if tls else 'smtp'}://127.0.0.1:{port}")

    def authenticate(server: Any, session: Any, envelope: Any, mechanism: str,
                     data: Any) -> AuthResult:  # fmt: skip
        assert isinstance(data, LoginPassword)
        box.logins.append((data.login.decode(), data.password.decode()))
        # handled=False: aiosmtpd then answers a refusal itself (535)
        return AuthResult(success=data.password.decode() == password, handled=False)

    extra: dict[str, Any] = (
        # The whole session is TLS: AUTH need not wait for STARTTLS.
        {"authenticator": authenticate, "auth_require_tls": False} if password else {}
    )
    controller = Controller(box, hostname="127.0.0.1", port=port, ssl_context=tls, **extra)
    controller.start()
    try:
        yield box
    finally:
        controller.stop()


class _Rows(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "tr":
            self.rows.append([])
        elif tag == "td":
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "td" and self._cell is not None:
            self.rows[-1].append(" ".join(" ".join(self._cell).split()))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def table_rows(html: str) -> list[list[str]]:
    """The text of each cell of each row of the report's tables, as a reader sees it."""
    parser = _Rows()
    parser.feed(html)
    return [row for row in parser.rows if any(row)]
