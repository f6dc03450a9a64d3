"""Sending an e-mail through the SMTP server a URL names.

``smtp://host[:25]`` speaks plain SMTP, for a relay on the host or the local network;
``smtps://[user:password@]host[:465]`` speaks it inside TLS from the first byte, with
the server's certificate verified. A password is refused in an ``smtp://`` URL: it
would cross the network in clear.
"""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass, field
from email.errors import HeaderParseError
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from urllib.parse import unquote, urlsplit

from tourviews.storage.errors import InvalidValue

PORTS = {"smtp": 25, "smtps": 465}
TIMEOUT = 30.0  # seconds for each exchange with the server
URL_SHAPE = "not an SMTP URL: use smtp://host[:port] or smtps://[user:password@]host[:port]"


class MailError(Exception):
    """The message could not be handed to the server; the message says why in one line."""


@dataclass(frozen=True, slots=True)
class SmtpServer:
    scheme: str
    host: str
    port: int
    user: str | None = None
    password: str | None = field(default=None, repr=False)

    def __str__(self) -> str:
        """The server as error messages name it: never with its password."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"


def parse_smtp_url(url: str) -> SmtpServer:
    """The server ``url`` names; ``InvalidValue`` on field ``smtp`` if it names none."""
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError:  # a port past 65535, an unclosed IPv6 bracket
        raise InvalidValue("smtp", URL_SHAPE) from None
    if parts.scheme not in PORTS or not host or parts.path not in ("", "/") or parts.query:
        raise InvalidValue("smtp", URL_SHAPE)
    user = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password is not None else None
    if parts.scheme == "smtp" and (user or password):
        raise InvalidValue(
            "smtp", "a user and password need smtps:// (smtp:// sends them in clear)"
        )
    return SmtpServer(parts.scheme, host, port or PORTS[parts.scheme], user, password)


def check_address(field: str, value: str) -> str:
    """An e-mail address as ``user@example.com``; ``InvalidValue`` on ``field`` otherwise."""
    try:
        address = Address(addr_spec=value)
    except (ValueError, IndexError, HeaderParseError):  # the parser's ways of refusing
        raise InvalidValue(field, f"{value!r} is not an e-mail address") from None
    if not address.username or not address.domain or address.addr_spec != value:
        raise InvalidValue(field, f"{value!r} is not an e-mail address like user@example.com")
    return value


def compose(subject: str, text: str, html: str, sender: str, recipients: list[str]) -> EmailMessage:
    """A multipart/alternative message: the plain text first, the HTML last (preferred)."""
    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    message["Date"] = formatdate(usegmt=True)
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2])
    message.set_content(text)
    message.add_alternative(html, subtype="html")
    return message


def send(message: EmailMessage, server: SmtpServer, context: ssl.SSLContext | None = None) -> None:
    """Hand ``message`` to ``server`` for every recipient, or raise ``MailError``.

    ``context`` verifies an ``smtps://`` server; by default against the system's
    certificate authorities.
    """
    try:
        if server.scheme == "smtps":
            client: smtplib.SMTP = smtplib.SMTP_SSL(
                server.host, server.port, timeout=TIMEOUT,
                context=context or ssl.create_default_context(),
            )  # fmt: skip
        else:
            client = smtplib.SMTP(server.host, server.port, timeout=TIMEOUT)
        with client:
            if server.user is not None:
                client.login(server.user, server.password or "")
            refused = client.send_message(message)
    except smtplib.SMTPRecipientsRefused as exc:
        raise MailError(f"{server} refused {', '.join(sorted(exc.recipients))}") from None
    except smtplib.SMTPResponseException as exc:
        said = exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) else ""
        raise MailError(f"{server} answered {exc.smtp_code} {' '.join(said.split())}") from None
    except (smtplib.SMTPException, OSError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise MailError(f"cannot send through {server}: {' '.join(reason.split())}") from None
    if refused:  # some recipients were refused, the others got it
        raise MailError(f"{server} refused {', '.join(sorted(refused))}")
