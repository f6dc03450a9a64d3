"""Where ``tourviews report`` puts the weekly report: stdout, a file, or an SMTP server."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tourviews.analytics.report_email import about, html, subject, text
from tourviews.control import CommandError
from tourviews.mail import MailError, SmtpServer, check_address, compose, parse_smtp_url, send
from tourviews.storage.errors import InvalidValue


@dataclass(frozen=True, slots=True)
class Delivery:
    """The report's destinations, checked before the report is made."""

    out: Path | None = None  # neither this nor a server: stdout
    server: SmtpServer | None = None
    sender: str = ""
    recipients: tuple[str, ...] = ()


def delivery(
    smtp: str | None, sender: str | None, recipients: list[str] | None, out: Path | None
) -> Delivery:
    """The destinations the flags name; ``InvalidValue`` naming the flag that is wrong."""
    if smtp is None:
        if sender or recipients:
            raise InvalidValue("smtp", "the server to send through is required with --from/--to")
        return Delivery(out)
    server = parse_smtp_url(smtp)
    if not sender:
        raise InvalidValue("from", "the sender's address is required with --smtp")
    if not recipients:
        raise InvalidValue("to", "at least one recipient is required with --smtp")
    addresses = tuple(check_address("to", address) for address in recipients)
    return Delivery(out, server, check_address("from", sender), addresses)


def deliver(report: dict[str, Any], where: Delivery) -> str:
    """Write or send ``report``; what the command prints (the HTML, when it goes nowhere else)."""
    page = html(report)
    if where.out is None and where.server is None:
        return page
    what = f"the weekly report of {about(report)} ({report['week']})"
    done = []
    if where.out is not None:
        try:
            where.out.write_text(page, encoding="utf-8")
        except OSError as exc:
            raise InvalidValue("out", f"cannot write {where.out}: {exc.strerror or exc}") from None
        done.append(f"wrote {what} to {where.out}\n")
    if where.server is not None:
        message = compose(subject(report), text(report), page, where.sender, list(where.recipients))
        try:
            send(message, where.server)
        except MailError as exc:
            raise CommandError(f"--smtp: {exc}") from None
        done.append(f"sent {what} to {', '.join(where.recipients)}\n")
    return "".join(done)
