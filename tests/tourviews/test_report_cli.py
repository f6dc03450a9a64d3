"""``tourviews report`` as a user runs it: the weekly report reaches a real SMTP server."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from tests.conftest import CHROME, StartServer, visitor
from tests.reports import Mailbox, free_port, mailbox, table_rows
from tests.tourviews.test_cli import ok, run
from tourviews.analytics.report_email import span
from tourviews.app import create_app
from tourviews.settings import Settings
from tourviews.storage.clock import ManualClock

SENDER = "reports@tourviews.example"


@pytest.fixture
def week(data_dir: Path) -> str:
    """The last complete week before today, as 2026-W48, with known views.

    t1 (acme): 2 views the week before, 3 this week; t2 (acme): 1 this week, none before;
    quiet (acme): none; rival (globex): 5 this week. Real dates: the command reads the
    system clock, and by default reports the last complete week.
    """
    today = datetime.now(UTC).date()
    monday = today - timedelta(days=today.weekday() + 7)
    clock = ManualClock(datetime.combine(monday - timedelta(days=7), time(9), tzinfo=UTC))
    app = create_app(Settings(data_dir=data_dir), clock)
    for tour, org in (("t1", "acme"), ("t2", "acme"), ("quiet", "acme"), ("rival", "globex")):
        app.service.registry.put_tour(tour, org)
    with TestClient(app, headers={"user-agent": CHROME}) as client:

        def views(tour: str, count: int) -> None:
            for _ in range(count):
                body = {"tour": tour, "visitor": visitor()}
                assert client.post("/v1/beacon", json=body).status_code == 204

        views("t1", 2)
        clock.set(datetime.combine(monday + timedelta(days=2), time(9), tzinfo=UTC))
        views("t1", 3)
        views("t2", 1)
        views("rival", 5)
    year, number, _ = monday.isocalendar()
    return f"{year}-W{number:02d}"


@pytest.fixture
def smtp() -> Iterator[Mailbox]:
    with mailbox() as box:
        yield box


def assert_report_received(box: Mailbox, week: str, recipients: list[str]) -> None:
    """One message, to ``recipients``, whose parts both say each tour's week against the one before."""
    assert len(box.received) == 1
    got = box.received[0]
    assert (got.sender, got.recipients) == (SENDER, recipients)
    message = got.message
    monday = date.fromisocalendar(int(week[:4]), int(week[6:]), 1)
    sunday = monday + timedelta(days=6)
    assert message["Subject"] == (
        f"tourviews weekly report: acme, {span(monday.isoformat(), sunday.isoformat())}"
    )
    assert message["To"] == ", ".join(recipients) and message["From"] == SENDER
    assert message.get_content_type() == "multipart/alternative"
    parts = [part.get_content_type() for part in message.iter_parts()]
    assert parts == ["text/plain", "text/html"]  # the last is the one clients prefer
    plain = message.get_body(("plain",))
    page = message.get_body(("html",))
    assert plain is not None and page is not None
    words, html = plain.get_content(), page.get_content()
    rows = table_rows(html)
    assert ["t1", "3", "2", "▲ 50%"] in rows
    assert ["t2", "1", "0", "new"] in rows
    assert ["quiet", "0", "0", "no change"] in rows
    assert ["Views", "3", "2", "▲ 50%"] in rows  # t1's own section
    assert "rival" not in html and "rival" not in words  # another organization's
    assert "4 views of 3 tours this week, ▲ 100% (week before: 2)" in words
    for outside in ("<img", "<svg", "<script", "http://", "https://"):
        assert outside not in html


def test_the_weekly_report_reaches_a_local_smtp_server(
    data_dir: Path, week: str, smtp: Mailbox
) -> None:
    to = ["owner@acme.example", "agent@acme.example"]
    printed = ok(data_dir, "report", "--org", "acme", "--week", week, "--smtp", smtp.url,
                 "--from", SENDER, "--to", to[0], "--to", to[1])  # fmt: skip
    assert printed == f"sent the weekly report of acme ({week}) to {to[0]}, {to[1]}\n"
    assert_report_received(smtp, week, to)


def test_through_a_running_server_the_report_reaches_it_too(
    data_dir: Path, week: str, smtp: Mailbox, start: StartServer
) -> None:
    start(data_dir)
    # No --week: the last complete week, the one the fixture filled.
    ok(data_dir, "report", "--org", "acme", "--smtp", smtp.url, "--from", SENDER,
       "--to", "owner@acme.example")  # fmt: skip
    assert_report_received(smtp, week, ["owner@acme.example"])


def test_without_smtp_the_html_goes_to_stdout_or_to_a_file(
    data_dir: Path, week: str, tmp_path: Path
) -> None:
    page = ok(data_dir, "report", "--org", "acme")
    assert page.startswith("<!DOCTYPE html>") and ["t1", "3", "2", "▲ 50%"] in table_rows(page)
    out = tmp_path / "report.html"
    printed = ok(data_dir, "report", "--org", "acme", "--week", week, "--out", str(out))
    assert printed == f"wrote the weekly report of acme ({week}) to {out}\n"
    assert out.read_text() == page


BAD = [
    (("--week", "2026-W54"), "--week"),
    (("--week", "2999-W01"), "--week"),
    (("--week", "soon"), "--week"),
    (("--org", "nobody"), "--org: no tours are registered for organization nobody"),
    (("--org", "a/b"), "--org"),
    (("--smtp", "http://127.0.0.1:25", "--from", SENDER, "--to", "a@b.example"), "--smtp"),
    (("--smtp", "smtp://u:secret@127.0.0.1:25", "--from", SENDER, "--to", "a@b.example"),
     "--smtp"),
    (("--smtp", "smtp://127.0.0.1:25", "--from", SENDER), "--to"),
    (("--smtp", "smtp://127.0.0.1:25", "--to", "a@b.example"), "--from"),
    (("--smtp", "smtp://127.0.0.1:25", "--from", SENDER, "--to", "not an address"), "--to"),
    (("--to", "a@b.example"), "--smtp"),
    (("--out", "/nonexistent/dir/report.html"), "--out"),
]  # fmt: skip


def report(data_dir: Path, *args: str) -> tuple[int, str]:
    flags = dict(zip(args[::2], args[1::2], strict=True))
    org = () if "--org" in flags else ("--org", "acme")
    result = run(data_dir, "report", *org, *args)
    return result.returncode, result.stderr


@pytest.mark.parametrize(("args", "named"), BAD)
def test_bad_flags_are_one_line_naming_the_flag_offline(
    data_dir: Path, week: str, args: tuple[str, ...], named: str
) -> None:
    code, said = report(data_dir, *args)
    assert code == 1
    assert said.startswith("tourviews: error: ") and said.count("\n") == 1, said
    assert named in said
    assert "secret" not in said


def test_bad_flags_are_one_line_naming_the_flag_through_a_server(
    data_dir: Path, week: str, start: StartServer
) -> None:
    start(data_dir)
    for args, named in BAD:
        code, said = report(data_dir, *args)
        assert code == 1, args
        assert said.startswith("tourviews: error: ") and said.count("\n") == 1, said
        assert named in said, (args, said)


def test_an_smtp_server_that_cannot_be_reached_is_one_line_naming_smtp(
    data_dir: Path, week: str
) -> None:
    url = f"smtp://127.0.0.1:{free_port()}"
    code, said = report(data_dir, "--smtp", url, "--from", SENDER, "--to", "a@b.example")
    assert code == 1
    assert said == f"tourviews: error: --smtp: cannot send through {url}: Connection refused\n"


def test_a_report_of_a_data_directory_that_does_not_exist_creates_none(tmp_path: Path) -> None:
    missing = tmp_path / "nothing"
    result = run(missing, "report", "--org", "acme")
    assert result.returncode == 1 and "--data" in result.stderr
    assert not missing.exists()


def test_the_page_is_the_same_offline_and_through_a_server(
    data_dir: Path, week: str, start: StartServer
) -> None:
    offline = ok(data_dir, "report", "--org", "acme", "--week", week)
    start(data_dir)
    assert ok(data_dir, "report", "--org", "acme", "--week", week) == offline
