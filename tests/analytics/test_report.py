"""The weekly report: its week, its document from known traffic, its e-mail, its route."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Any

import pytest
from starlette.testclient import TestClient

from tests.conftest import view, visitor
from tests.reports import table_rows
from tourviews.analytics.report import FIGURES, VIEWS, Change, change, org_tours, weekly_report
from tourviews.analytics.report_email import html, span, subject, text
from tourviews.analytics.week import Week, parse_week
from tourviews.app import TourviewsApp
from tourviews.storage.clock import ManualClock
from tourviews.storage.errors import InvalidValue

TUESDAY = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)  # the clock fixture's time, in 2026-W48
W48 = Week(date(2026, 11, 23))

# The week


@pytest.mark.parametrize(
    ("value", "monday"),
    [
        ("2026-W48", date(2026, 11, 23)),
        ("2026-11-29", date(2026, 11, 23)),  # a Sunday is the last day of its week
        ("2026-11-23", date(2026, 11, 23)),
        ("2021-W01", date(2021, 1, 4)),  # ISO week 1 holds the year's first Thursday
        ("2020-W53", date(2020, 12, 28)),
        (None, date(2026, 11, 16)),  # the last complete week
        ("", date(2026, 11, 16)),
    ],
)
def test_a_week_is_named_by_its_iso_week_or_any_of_its_days(
    value: str | None, monday: date
) -> None:
    assert parse_week(value, TUESDAY).first == monday


def test_on_a_monday_the_last_complete_week_ended_yesterday() -> None:
    week = parse_week(None, datetime(2026, 11, 30, 0, 5, tzinfo=UTC))
    assert (week.first, week.last, week.label) == (
        date(2026, 11, 23),
        date(2026, 11, 29),
        W48.label,
    )
    assert week.previous.first == date(2026, 11, 16)


@pytest.mark.parametrize(
    "value",
    ["2026-W54", "2025-W53", "2026-W00", "2026-48", "2026W48", "2026-11-31", "yesterday",
     "2026-w48", "٢٠٢٦-W48", "2026-11-24T00:00", "2026-W49", "2027-01-01", "1970-W01",
     "0001-01-01", "0000-W01"],
)  # fmt: skip
def test_a_bad_or_future_week_is_refused_naming_the_field(value: str) -> None:
    with pytest.raises(InvalidValue) as refused:
        parse_week(value, TUESDAY)
    assert refused.value.field == "week"


# The document, from traffic through the real pipeline


@pytest.fixture
def two_weeks(app: TourviewsApp, client: TestClient, clock: ManualClock) -> None:
    """t1: 2 views in W47, 3 in W48 (Monday and twice on Tuesday), a scene; t2 (acme): one
    view in W48 only; rival (globex): 5 views in W48."""
    app.service.registry.put_tour("t2", "acme")
    app.service.registry.put_tour("rival", "globex")
    clock.set(datetime(2026, 11, 16, 9, tzinfo=UTC))
    view(client, visitor())
    clock.set(datetime(2026, 11, 22, 23, 59, tzinfo=UTC))
    view(client, visitor())
    clock.set(datetime(2026, 11, 23, 0, 0, tzinfo=UTC))
    view(client, visitor())
    clock.set(TUESDAY)
    guest = visitor()
    view(client, guest)
    view(client, guest, event="scene", scene="kitchen")
    view(client, visitor())
    for tour, views in (("t2", 1), ("rival", 5)):
        for _ in range(views):
            body = {"tour": tour, "visitor": visitor()}
            assert client.post("/v1/beacon", json=body).status_code == 204


def test_the_report_holds_each_tours_week_and_the_week_before(
    app: TourviewsApp, two_weeks: None
) -> None:
    tours = org_tours(app.service.registry.tours, "acme")
    assert list(tours) == ["locked", "t1", "t2"]
    with app.service.db.using() as cursor:
        report = weekly_report(cursor, "acme", tours, W48)
    assert (report["week"], report["from"], report["to"]) == (
        "2026-W48",
        "2026-11-23",
        "2026-11-29",
    )
    assert report["previous"] == {"from": "2026-11-16", "to": "2026-11-22"}
    assert [(t["tour"], t["totals"]["views"], t["previous"]["views"]) for t in report["tours"]] == [
        ("t1", 3, 2), ("t2", 1, 0), ("locked", 0, 0),
    ]  # fmt: skip
    assert [d["tour"] for d in report["details"]] == ["t1", "t2"]  # locked had no view
    t1 = report["details"][0]
    assert [e["views"] for e in t1["current"]["series"]] == [1, 2, 0, 0, 0, 0, 0]
    assert [e["views"] for e in t1["previous"]["series"]] == [1, 0, 0, 0, 0, 0, 1]
    scene = {"key": "kitchen", "views": 1, "visitors": 1, "engaged_seconds": 0}
    assert t1["current"]["breakdown"]["scene"] == [scene]


def test_an_organization_without_tours_is_unknown(app: TourviewsApp) -> None:
    with pytest.raises(InvalidValue, match="no tours are registered for organization globex"):
        org_tours(app.service.registry.tours, "globex")
    with pytest.raises(InvalidValue) as refused:
        org_tours(app.service.registry.tours, "a/b")
    assert refused.value.field == "org"


# The e-mail, from documents


def stats(
    series: list[int], breakdown: dict[str, Any] | None = None, **totals: Any
) -> dict[str, Any]:
    """A stats document of W48 (or the week before, with ``from`` changed by the caller)."""
    return {
        "tour": "t1", "from": "2026-11-23", "to": "2026-11-29", "interval": "day",
        "totals": {"views": sum(series), "visitors": sum(series), "visitors_exact": True} | totals,
        "series": [{"start": f"2026-11-{23 + i}T00:00:00Z", "views": v, "visitors": v}
                   for i, v in enumerate(series)],
        "breakdown": {"device": [], "browser": [], "os": [], "scene": []} | (breakdown or {}),
    }  # fmt: skip


def document(
    *details: tuple[str, dict[str, Any], dict[str, Any]], org: str = "acme"
) -> dict[str, Any]:
    return {
        "org": org, "week": "2026-W48", "from": "2026-11-23", "to": "2026-11-29",
        "previous": {"from": "2026-11-16", "to": "2026-11-22"},
        "tours": [{"tour": tour, "totals": now["totals"], "previous": before["totals"]}
                  for tour, now, before in details],
        "details": [{"tour": tour, "current": now, "previous": before | {"from": "2026-11-16"}}
                    for tour, now, before in details],
    }  # fmt: skip


def section(page: str, tour: str) -> list[list[str]]:
    """The table rows of one tour's section of the HTML report."""
    part = next(p for p in page.split("<h2")[1:] if p.split(">", 1)[1].startswith(f"{tour}<"))
    return table_rows(part)


def test_the_html_compares_each_figure_and_day_with_the_week_before() -> None:
    page = html(document(("t1", stats([4, 0, 2, 0, 0, 0, 0]), stats([1, 1, 0, 0, 0, 0, 2]))))
    rows = section(page, "t1")
    assert ["Views", "6", "4", "▲ 50%"] in rows
    assert ["Visitors", "6", "4", "▲ 50%"] in rows
    assert ["Mon 23", "Tue 24", "Wed 25", "Thu 26", "Fri 27", "Sat 28", "Sun 29"] in rows
    assert ["4", "0", "2", "0", "0", "0", "0"] in rows  # this week's views under the bars
    heights = [int(h) for h in re.findall(r'<td width="12" height="(\d+)"', page)]
    # Each day: the week before's bar, then this week's, scaled to the highest (4 -> 80 px).
    assert heights == [20, 80, 20, 1, 1, 40, 1, 1, 1, 1, 1, 1, 40, 1]
    assert ["t1", "6", "4", "▲ 50%"] in table_rows(page)  # the overview


def test_figures_the_stats_document_lacks_are_left_out_and_shown_once_it_has_them() -> None:
    plain = html(document(("t1", stats([1] * 7), stats([1] * 7))))
    assert "Engaged time" not in plain and "Bounce rate" not in plain and "Actions" not in plain
    engaged = {"visits": 10, "engaged_seconds": 600, "engaged_seconds_per_visit": 65,
               "scenes_per_visit": 1.5, "bounce_rate": 0.5}  # fmt: skip
    earlier = {"visits": 8, "engaged_seconds": 480, "engaged_seconds_per_visit": 60,
               "scenes_per_visit": 1.5, "bounce_rate": 0.4}  # fmt: skip
    breakdown = {
        "entry_scene": [{"key": "lobby", "visits": 9}],
        "exit_scene": [{"key": "kitchen", "visits": 6}],
        "action": [{"key": "lead-form", "count": 3, "visitors": 2}],
    }
    full = document(("t1", stats([1] * 7, breakdown, **engaged), stats([1] * 7, **earlier)))
    rows = section(html(full), "t1")
    assert ["Visits", "10", "8", "▲ 25%"] in rows
    assert ["Engaged time", "10 min 00 s", "8 min 00 s", "▲ 25%"] in rows
    assert ["Engaged time per visit (median)", "1 min 05 s", "1 min 00 s", "▲ 8%"] in rows
    assert ["Scenes per visit", "1.5", "1.5", "no change"] in rows
    assert ["Bounce rate", "50%", "40%", "▲ 10 pts"] in rows
    assert ["lobby", "9"] in rows and ["kitchen", "6"] in rows and ["lead-form", "3"] in rows
    assert "Where visits began" in html(full) and "Actions" in html(full)
    assert "Bounce rate" in text(full) and "lead-form" in text(full)


def test_the_sources_and_campaigns_of_the_week_are_in_the_report() -> None:
    breakdown = {
        "source": [{"key": "krisha.kz", "views": 5, "visitors": 4},
                   {"key": "(direct)", "views": 2, "visitors": 2}],
        "utm_campaign": [{"key": "winter-sale", "views": 3, "visitors": 3}],
    }  # fmt: skip
    full = document(("t1", stats([1] * 7, breakdown), stats([1] * 7)))
    rows = section(html(full), "t1")
    assert ["krisha.kz", "5"] in rows and ["(direct)", "2"] in rows
    assert ["winter-sale", "3"] in rows
    assert "Where views came from" in html(full) and "Campaigns" in html(full)
    assert "krisha.kz" in text(full) and "winter-sale" in text(full)


def test_a_worse_bounce_rate_is_red_and_more_views_green() -> None:
    bounce = next(f for f in FIGURES if f.key == "bounce_rate")
    assert change(bounce, 0.5, 0.4).good is False
    assert change(bounce, 0.3, 0.4).good is True
    assert change(VIEWS, 3, 2).good is True
    assert change(VIEWS, 1, 2) == Change("▼ 50%", False)
    assert change(bounce, 0.502, 0.5) == Change("no change", None)  # both read 50%
    assert change(bounce, 0.51, 0.5) == Change("▲ 1 pt", False)  # one point, not "1 pts"


@pytest.mark.parametrize(
    ("now", "before", "shown"),
    [(3, 2, "▲ 50%"), (1, 2, "▼ 50%"), (5, 0, "new"), (0, 0, "no change"), (7, 7, "no change"),
     (0, 4, "▼ 100%"), (1001, 1000, "▲ <1%")],
)  # fmt: skip
def test_a_change_is_an_arrow_and_a_percentage_or_new(now: int, before: int, shown: str) -> None:
    assert change(VIEWS, now, before).text == shown


def test_every_name_is_escaped_and_nothing_is_loaded_from_elsewhere() -> None:
    hostile = "<img src=https://evil.example/x.png>"
    scenes = {"scene": [{"key": "<script>alert(1)</script>", "views": 1, "visitors": 1}]}
    page = html(document((hostile, stats([1] * 7, scenes), stats([0] * 7)), org="a&b"))
    assert "<img" not in page and "<script" not in page.lower()
    assert "&lt;img src=https://evil.example/x.png&gt;" in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "a&amp;b" in page
    clean = html(document(("t1", stats([1] * 7, scenes), stats([0] * 7))))
    for outside in ("<img", "<svg", "<script", "<link", "<style", "http://", "https://", "url("):
        assert outside not in clean.lower()


def test_the_plain_text_part_says_what_the_html_says() -> None:
    report = document(("t1", stats([4, 0, 2, 0, 0, 0, 0]), stats([1, 1, 0, 0, 0, 0, 2])))
    lines = text(report).splitlines()
    assert lines[0] == "tourviews weekly report: acme, 23–29 Nov 2026"
    assert "6 views of 1 tour this week, ▲ 50% (week before: 4)" in lines
    assert re.search(r"^t1\s+6\s+4\s+▲ 50%$", text(report), re.MULTILINE)
    assert re.search(r"^Views\s+6\s+4\s+▲ 50%$", text(report), re.MULTILINE)
    assert re.search(r"^Mon 23 Nov\s+█+\s+4\s+1$", text(report), re.MULTILINE)
    assert "<" not in text(report)


@pytest.mark.parametrize(
    ("first", "last", "written"),
    [("2026-11-23", "2026-11-29", "23–29 Nov 2026"),
     ("2026-11-30", "2026-12-06", "30 Nov – 6 Dec 2026"),
     ("2026-12-28", "2027-01-03", "28 Dec 2026 – 3 Jan 2027")],
)  # fmt: skip
def test_a_week_is_written_as_people_write_it(first: str, last: str, written: str) -> None:
    assert span(first, last) == written


def test_the_subject_names_the_organization_and_the_week() -> None:
    report = document(("t1", stats([1] * 7), stats([1] * 7)))
    assert subject(report) == "tourviews weekly report: acme, 23–29 Nov 2026"


# The route


def get_report(client: TestClient, token: str | None, **params: str) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return client.get("/v1/admin/report", params=params, headers=headers)


def test_the_route_answers_the_html_report_to_an_admin(
    client: TestClient, admin_token: str, two_weeks: None
) -> None:
    response = get_report(client, admin_token, org="acme", week="2026-W48")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert ["t1", "3", "2", "▲ 50%"] in table_rows(response.text)
    assert ["t2", "1", "0", "new"] in table_rows(response.text)
    assert "rival" not in response.text
    data = get_report(client, admin_token, org="acme", week="2026-11-25", format="json").json()
    assert [t["tour"] for t in data["tours"]] == ["t1", "t2", "locked"]


def test_the_route_reports_the_last_complete_week_by_default(
    client: TestClient, admin_token: str, two_weeks: None
) -> None:
    data = get_report(client, admin_token, org="acme", format="json").json()
    assert (data["week"], data["tours"][0]["totals"]["views"]) == ("2026-W47", 2)


@pytest.mark.parametrize(
    ("params", "field"),
    [({"org": "acme", "week": "2026-W54"}, "week"), ({"org": "acme", "week": "2026-W49"}, "week"),
     ({"org": "acme", "format": "pdf"}, "format"), ({"org": "a/b"}, "org"), ({}, "org")],
)  # fmt: skip
def test_bad_parameters_answer_400_naming_the_field(
    client: TestClient, admin_token: str, params: dict[str, str], field: str
) -> None:
    response = get_report(client, admin_token, **params)
    assert response.status_code == 400
    assert response.json()["field"] == field


def test_an_unknown_organization_answers_404(client: TestClient, admin_token: str) -> None:
    response = get_report(client, admin_token, org="nobody")
    assert response.status_code == 404
    assert response.json() == {
        "error": "no tours are registered for organization nobody",
        "field": "org",
    }


def test_the_report_needs_an_admin_token(app: TourviewsApp, client: TestClient) -> None:
    assert get_report(client, None, org="acme").status_code == 401
    assert get_report(client, "tv_not-a-token", org="acme").status_code == 401
    owner = app.service.registry.create_token("acme")
    refused = get_report(client, owner, org="acme")
    assert refused.status_code == 403
    assert refused.json()["error"] == "this needs an admin token"


def test_each_tours_week_is_seven_days_of_its_own_time_zone(
    app: TourviewsApp, client: TestClient, clock: ManualClock
) -> None:
    app.service.registry.put_tour("t2", "acme", timezone="Asia/Almaty")
    clock.set(datetime(2026, 11, 22, 20, 0, tzinfo=UTC))  # Sunday in UTC, Monday 01:00 in Almaty
    for tour in ("t1", "t2"):
        assert (
            client.post("/v1/beacon", json={"tour": tour, "visitor": visitor()}).status_code == 204
        )
    with app.service.db.using() as cursor:
        report = weekly_report(cursor, "acme", org_tours(app.service.registry.tours, "acme"), W48)
    weeks = {
        row["tour"]: (row["totals"]["views"], row["previous"]["views"]) for row in report["tours"]
    }
    assert weeks["t1"] == (0, 1)  # its Sunday: the week before
    assert weeks["t2"] == (1, 0)  # its Monday: this week


def test_the_default_week_is_over_in_every_tours_time_zone() -> None:
    monday_early = datetime(2026, 11, 30, 3, 0, tzinfo=UTC)  # still Sunday in Los Angeles
    assert parse_week(None, monday_early).first == date(2026, 11, 23)
    assert parse_week(None, monday_early, ["UTC", "America/Los_Angeles"]).first == date(
        2026, 11, 16
    )
