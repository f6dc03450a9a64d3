"""Sending through an SMTP URL: plain or implicit TLS, a login, refusals as one line."""

from __future__ import annotations

import ipaddress
import re
import ssl
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.reports import Mailbox, free_port, mailbox
from tourviews.mail import MailError, SmtpServer, check_address, compose, parse_smtp_url, send
from tourviews.storage.errors import InvalidValue

SENDER = "reports@tourviews.example"


def message(*recipients: str) -> Any:
    return compose("the subject", "plain words\n", "<p>html words</p>", SENDER, list(recipients))


@pytest.fixture
def certificate(tmp_path: Path) -> Path:
    """A self-signed certificate for 127.0.0.1, its key beside it (``.key``)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "tourviews test")])
    now = datetime.now(UTC)
    made = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    path = tmp_path / "smtp.pem"
    path.write_bytes(made.public_bytes(serialization.Encoding.PEM))
    path.with_suffix(".key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return path


@pytest.fixture
def tls_mailbox(certificate: Path) -> Iterator[Mailbox]:
    """An SMTP server speaking TLS from the first byte, whose password is 'p@ss:word'."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certificate, certificate.with_suffix(".key"))
    with mailbox(tls=context, password="p@ss:word") as box:
        yield box


def test_a_plain_smtp_server_gets_the_message_for_every_recipient() -> None:
    with mailbox() as box:
        send(message("a@one.example", "b@two.example"), parse_smtp_url(box.url))
    [got] = box.received
    assert got.recipients == ["a@one.example", "b@two.example"]
    assert got.message["Subject"] == "the subject"
    assert [part.get_content_type() for part in got.message.iter_parts()] == [
        "text/plain",
        "text/html",
    ]


def test_smtps_logs_in_over_a_verified_tls_connection(
    tls_mailbox: Mailbox, certificate: Path
) -> None:
    url = tls_mailbox.url.replace("smtps://", "smtps://robot%40acme:p%40ss%3Aword@")
    send(
        message("a@one.example"),
        parse_smtp_url(url),
        ssl.create_default_context(cafile=certificate),
    )
    assert tls_mailbox.logins == [("robot@acme", "p@ss:word")]
    assert [got.recipients for got in tls_mailbox.received] == [["a@one.example"]]


def test_a_certificate_the_system_does_not_trust_stops_the_message(tls_mailbox: Mailbox) -> None:
    url = tls_mailbox.url.replace("smtps://", "smtps://robot:p%40ss%3Aword@")
    with pytest.raises(MailError, match="CERTIFICATE_VERIFY_FAILED") as refused:
        send(message("a@one.example"), parse_smtp_url(url))
    assert "\n" not in str(refused.value) and "p@ss" not in str(refused.value)
    assert tls_mailbox.received == [] and tls_mailbox.logins == []


def test_a_wrong_password_is_the_servers_answer_in_one_line(
    tls_mailbox: Mailbox, certificate: Path
) -> None:
    url = tls_mailbox.url.replace("smtps://", "smtps://robot:guess@")
    with pytest.raises(MailError, match=r"answered 535 ") as refused:
        send(
            message("a@one.example"),
            parse_smtp_url(url),
            ssl.create_default_context(cafile=certificate),
        )
    assert "\n" not in str(refused.value) and "guess" not in str(refused.value)
    assert tls_mailbox.received == []


class Picky(Mailbox):
    """Takes mail for example.com only."""

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                          options: list[str]) -> str:  # fmt: skip
        if not address.endswith("@example.com"):
            return "550 no such mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 OK"


def test_refused_recipients_are_named() -> None:
    port = free_port()
    box = Picky(f"smtp://127.0.0.1:{port}")
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        server = parse_smtp_url(box.url)
        with pytest.raises(
            MailError, match=rf"^{re.escape(box.url)} refused x@elsewhere\.example$"
        ):
            send(message("ok@example.com", "x@elsewhere.example"), server)
        assert [got.recipients for got in box.received] == [["ok@example.com"]]
        with pytest.raises(MailError, match=r"refused a@elsewhere\.example, b@elsewhere\.example$"):
            send(message("b@elsewhere.example", "a@elsewhere.example"), server)
    finally:
        controller.stop()


@pytest.mark.parametrize(
    ("url", "server"),
    [("smtp://127.0.0.1:2525", SmtpServer("smtp", "127.0.0.1", 2525)),
     ("smtp://mail.example.com", SmtpServer("smtp", "mail.example.com", 25)),
     ("smtps://mail.example.com/", SmtpServer("smtps", "mail.example.com", 465)),
     ("smtps://u%40x:p%3Aw@[::1]:4650", SmtpServer("smtps", "::1", 4650, "u@x", "p:w"))],
)  # fmt: skip
def test_an_smtp_url_names_a_server(url: str, server: SmtpServer) -> None:
    assert parse_smtp_url(url) == server


def test_a_server_is_named_without_its_password() -> None:
    server = parse_smtp_url("smtps://robot:hunter2@mail.example.com")
    assert str(server) == "smtps://mail.example.com:465"
    assert "hunter2" not in repr(server)


@pytest.mark.parametrize(
    "url",
    ["http://mail.example.com", "mail.example.com:25", "smtp://", "smtp://h:99999",
     "smtp://h/path", "smtps://h?tls=1", "smtp://user:pw@mail.example.com", "smtp://[::1"],
)  # fmt: skip
def test_a_url_that_names_no_smtp_server_is_refused_on_field_smtp(url: str) -> None:
    with pytest.raises(InvalidValue) as refused:
        parse_smtp_url(url)
    assert refused.value.field == "smtp" and "pw" not in refused.value.message


@pytest.mark.parametrize(
    "address",
    ["", "owner", "owner@", "@acme.example", "Owner <owner@acme.example>", "a b@acme.example",
     "a@acme.example, b@acme.example", "a@acme.example\r\nBcc: x@evil.example"],
)  # fmt: skip
def test_an_address_must_be_one_bare_address(address: str) -> None:
    with pytest.raises(InvalidValue) as refused:
        check_address("to", address)
    assert refused.value.field == "to"
    assert check_address("to", "owner@acme.example") == "owner@acme.example"
