"""A tour's own weekly report, to its own recipients: an agency reports per client."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from tests.conftest import StartServer
from tests.reports import Mailbox, table_rows
from tests.tourviews.test_cli import ok, run
from tests.tourviews.test_report_cli import SENDER, smtp, week
from tourviews.analytics.report_email import span
from tourviews.app import TourviewsApp

__all__ = ["smtp", "week"]  # fixtures of the organization's report, the same week here

CLIENT = ["client@t1.example", "boss@t1.example"]


def assert_tour_report_received(box: Mailbox, week: str, recipients: list[str]) -> None:
    """One message to ``recipients``: t1's week (3 views against 2), and no other tour."""
    assert len(box.received) == 1
    got = box.received[0]
    assert (got.sender, got.recipients) == (SENDER, recipients)
    monday = date.fromisocalendar(int(week[:4]), int(week[6:]), 1)
    first, last = monday.isoformat(), (monday + timedelta(days=6)).isoformat()
    assert got.message["Subject"] == f"tourviews weekly report: t1, {span(first, last)}"
    plain, page = got.message.get_body(("plain",)), got.message.get_body(("html",))
    assert plain is not None and page is not None
    words, html = plain.get_content(), page.get_content()
    rows = table_rows(html)
    assert ["t1", "3", "2", "▲ 50%"] in rows
    assert ["Views", "3", "2", "▲ 50%"] in rows  # its own section
    assert "3 views of 1 tour this week, ▲ 50% (week before: 2)" in words
    for other in ("t2", "quiet", "rival"):  # the organization's other tours, another's
        assert other not in html and other not in words


def send_t1(data_dir: Path, box: Mailbox, *flags: str) -> str:
    """``tourviews report --tour t1`` through ``box``'s server; what it printed."""
    return ok(data_dir, "report", "--tour", "t1", "--smtp", box.url, "--from", SENDER, *flags)


def test_a_tours_report_goes_to_the_recipients_set_on_the_tour(
    data_dir: Path, week: str, smtp: Mailbox
) -> None:
    said = ok(data_dir, "tours", "add", "t1", "--org", "acme",
              "--report-to", CLIENT[0], "--report-to", CLIENT[1])  # fmt: skip
    assert said == f"registered t1 for acme\nits weekly report goes to {', '.join(CLIENT)}\n"
    sent = send_t1(data_dir, smtp, "--week", week)
    assert sent == f"sent the weekly report of t1 ({week}) to {', '.join(CLIENT)}\n"
    assert_tour_report_received(smtp, week, CLIENT)


def test_through_a_running_server_a_tours_report_reaches_its_recipients_too(
    data_dir: Path, week: str, smtp: Mailbox, start: StartServer
) -> None:
    start(data_dir)
    ok(data_dir, "tours", "add", "t1", "--org", "acme", "--report-to", CLIENT[0])
    send_t1(data_dir, smtp)  # no --week: the last complete one
    assert_tour_report_received(smtp, week, CLIENT[:1])


def test_to_given_on_the_command_replaces_the_tours_recipients(
    data_dir: Path, week: str, smtp: Mailbox
) -> None:
    ok(data_dir, "tours", "add", "t1", "--org", "acme", "--report-to", CLIENT[0])
    send_t1(data_dir, smtp, "--week", week, "--to", "agency@acme.example")
    assert_tour_report_received(smtp, week, ["agency@acme.example"])


def test_no_report_to_leaves_the_tour_without_recipients_and_sending_then_names_to(
    data_dir: Path, week: str, smtp: Mailbox
) -> None:
    ok(data_dir, "tours", "add", "t1", "--org", "acme", "--report-to", CLIENT[0])
    said = ok(data_dir, "tours", "add", "t1", "--org", "acme", "--no-report-to")
    assert said.endswith("it has no weekly report of its own\n")
    refused = run(data_dir, "report", "--tour", "t1", "--smtp", smtp.url, "--from", SENDER)
    assert refused.returncode == 1 and refused.stderr.count("\n") == 1
    assert refused.stderr.startswith("tourviews: error: --to: tour t1 has no recipients")
    assert smtp.received == []


@pytest.mark.parametrize(
    ("args", "named"),
    [(("tours", "add", "t1", "--org", "acme", "--report-to", "not an address"), "--report-to"),
     (("report", "--tour", "nowhere"), "unknown tour 'nowhere'"),
     (("report", "--tour", "t1", "--org", "acme"), "not allowed with argument"),
     (("report",), "one of the arguments --org --tour is required")],
)  # fmt: skip
def test_bad_report_flags_are_one_line(
    data_dir: Path, week: str, args: tuple[str, ...], named: str
) -> None:
    refused = run(data_dir, *args)
    assert refused.returncode != 0 and "Traceback" not in refused.stderr
    assert named in refused.stderr.splitlines()[-1], refused.stderr


def test_the_tour_report_api_holds_that_tour_alone(client: TestClient, admin_token: str) -> None:
    auth = {"Authorization": f"Bearer {admin_token}"}
    document = client.get("/v1/admin/report", params={"tour": "t1", "format": "json"},
                          headers=auth).json()  # fmt: skip
    assert (document["org"], document["tour"]) == ("acme", "t1")
    assert [t["tour"] for t in document["tours"]] == ["t1"]
    both = client.get("/v1/admin/report", params={"tour": "t1", "org": "acme"}, headers=auth)
    assert (both.status_code, both.json()["field"]) == (400, "org")
    missing = client.get("/v1/admin/report", params={"tour": "nowhere"}, headers=auth)
    assert (missing.status_code, missing.json()["field"]) == (404, "tour")


def test_recipients_are_checked_and_go_with_the_tour_when_it_is_deleted(
    app: TourviewsApp, client: TestClient, admin_token: str
) -> None:
    auth = {"Authorization": f"Bearer {admin_token}"}
    bad = client.put("/v1/admin/tours/t1/report", json={"report_to": ["nope"]}, headers=auth)
    assert (bad.status_code, bad.json()["field"]) == (400, "report_to")
    put = client.put("/v1/admin/tours/t1/report", json={"report_to": CLIENT + CLIENT[:1]},
                     headers=auth)  # fmt: skip
    assert put.json() == {"tour": "t1", "report_to": CLIENT}  # each once, in order
    assert client.get("/v1/admin/tours/t1/report", headers=auth).json()["report_to"] == CLIENT
    unknown = client.put("/v1/admin/tours/nowhere/report", json={"report_to": []}, headers=auth)
    assert unknown.status_code == 404
    assert client.delete("/v1/admin/tours/t1", headers=auth).json() == {"deleted": True}
    app.service.registry.put_tour("t1", "globex")  # the ID registered anew, for someone else
    assert app.service.registry.report_to("t1") == ()
