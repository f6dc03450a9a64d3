"""Countries (``serve --geoip``): counted by the address's country, shown only with the
database, rolled up past raw retention like every breakdown."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from starlette.testclient import TestClient

from tests.conftest import CHROME, view, visitor
from tests.countries import DE, KZ, KZ_V6, RU, geoip_database
from tourviews.analytics.breakdowns import UNKNOWN_COUNTRY
from tourviews.app import TourviewsApp, create_app
from tourviews.cli import main
from tourviews.settings import Settings
from tourviews.storage.clock import ManualClock

DAY = {"from": "2026-11-24", "to": "2026-11-24"}  # the manual clock's today


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return geoip_database(tmp_path_factory.mktemp("geoip"))


def make_app(data_dir: Path, clock: ManualClock, geoip: Path | None) -> TourviewsApp:
    app = create_app(Settings(data_dir=data_dir, geoip=geoip), clock)
    app.service.registry.put_tour("t1", "acme")
    return app


@pytest.fixture
def geoip_app(data_dir: Path, clock: ManualClock, database: Path) -> TourviewsApp:
    return make_app(data_dir, clock, database)


@pytest.fixture
def senders(geoip_app: TourviewsApp) -> Iterator[dict[str, TestClient]]:
    """A client from each address (no proxy: the peer is the address looked up)."""
    clients = {
        address: TestClient(geoip_app, headers={"user-agent": CHROME}, client=(address, 40000))
        for address in (KZ, KZ_V6, RU, DE, "10.0.0.7", "127.0.0.1")
    }
    with clients[KZ]:  # one lifespan: the service starts and stops once
        yield clients


def read(client: TestClient, path: str, params: dict[str, str] | None = None) -> dict[str, Any]:
    token = client.app.service.registry.create_token("acme")  # type: ignore[attr-defined]
    answer = client.get(path, params=params, headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 200, answer.text
    document: dict[str, Any] = answer.json()
    return document


def rows(document: dict[str, Any]) -> list[tuple[str, int, int]]:
    return [(r["key"], r["views"], r["visitors"]) for r in document["breakdown"]["country"]]


def test_views_are_counted_by_the_country_of_their_address(
    senders: dict[str, TestClient],
) -> None:
    for address, visitors in ((KZ, 2), (KZ_V6, 1), (RU, 1), (DE, 1), ("10.0.0.7", 1),
                              ("127.0.0.1", 1)):  # fmt: skip
        for _ in range(visitors):
            who = visitor()
            view(senders[address], who)
            view(senders[address], who, event="scene", scene="lobby")  # not a view: not here
    document = read(senders[KZ], "/v1/tours/t1/stats", DAY)
    assert rows(document) == [("KZ", 3, 3), (UNKNOWN_COUNTRY, 2, 2), ("DE", 1, 1), ("RU", 1, 1)]
    assert list(document["breakdown"])[-1] == "country"  # the registry's order


def test_only_the_code_is_stored_with_the_event(
    geoip_app: TourviewsApp, senders: dict[str, TestClient]
) -> None:
    view(senders[KZ], visitor())
    view(senders["10.0.0.7"], visitor())
    stored = geoip_app.service.db.cursor().execute(
        "SELECT country FROM events ORDER BY country NULLS LAST"
    )
    assert stored.fetchall() == [("KZ",), (None,)]


def test_the_dashboard_is_told_of_countries_with_the_database(
    senders: dict[str, TestClient],
) -> None:
    listed = read(senders[KZ], "/v1/tours")["breakdowns"]
    assert listed[-1] == {
        "name": "country", "title": "Countries", "heading": "country",
        "columns": [{"field": "views", "heading": "views", "kind": "count"},
                    {"field": "visitors", "heading": "visitors", "kind": "count"}],
        "top": None, "filter": True,
    }  # fmt: skip


def test_without_the_database_countries_are_absent_not_unknown(
    data_dir: Path, clock: ManualClock
) -> None:
    app = make_app(data_dir, clock, None)
    with TestClient(app, headers={"user-agent": CHROME}, client=(KZ, 40000)) as client:
        view(client, visitor())
        document = read(client, "/v1/tours/t1/stats", DAY)
        assert document["totals"]["views"] == 1
        assert "country" not in document["breakdown"]
        assert "country" not in [b["name"] for b in read(client, "/v1/tours")["breakdowns"]]


def offline_stats(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    """``tourviews stats`` on the data directory, no server running."""
    capsys.readouterr()
    assert main(["stats", "t1", "--data", str(data_dir), "--format", "json",
                 "--from", DAY["from"], "--to", DAY["to"]]) == 0  # fmt: skip
    document: dict[str, Any] = orjson.loads(capsys.readouterr().out)
    return document


def test_a_read_without_the_server_shows_what_its_last_start_chose(
    data_dir: Path, clock: ManualClock, database: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with TestClient(make_app(data_dir, clock, database), client=(KZ, 40000),
                    headers={"user-agent": CHROME}) as client:  # fmt: skip
        view(client, visitor())
    assert rows(offline_stats(data_dir, capsys)) == [("KZ", 1, 1)]
    table = capsys.readouterr().out if main(["stats", "t1", "--data", str(data_dir), "--from",
                                             DAY["from"], "--to", DAY["to"]]) == 0 else ""  # fmt: skip
    assert "country" in table and "KZ" in table
    # started again without --geoip: the countries kept are no longer shown
    with TestClient(make_app(data_dir, clock, None), client=(KZ, 40000),
                    headers={"user-agent": CHROME}) as client:  # fmt: skip
        view(client, visitor())
    assert "country" not in offline_stats(data_dir, capsys)["breakdown"]


def test_countries_outlive_the_raw_events(
    senders: dict[str, TestClient], clock: ManualClock
) -> None:
    clock.advance(timedelta(days=-39))
    for _ in range(40):  # a visitor from Kazakhstan and one from a private network, daily
        view(senders[KZ], visitor())
        view(senders["10.0.0.7"], visitor())
        clock.advance(timedelta(days=1))
    clock.advance(timedelta(days=-1))
    client = senders[KZ]
    token = client.app.service.registry.create_token("ops", admin=True)  # type: ignore[attr-defined]
    purged = client.post("/v1/admin/purge", headers={"Authorization": f"Bearer {token}"})
    assert purged.json()["deleted"] == 2 * 9  # of 40 days, 31 are kept raw
    past = read(client, "/v1/tours/t1/stats", {"from": "2026-10-16", "to": "2026-10-20"})
    assert rows(past) == [(UNKNOWN_COUNTRY, 5, 5), ("KZ", 5, 5)]  # ties: by key
    whole = read(client, "/v1/tours/t1/stats", {"from": "2026-10-16", "to": "2026-11-24"})
    assert rows(whole) == [(UNKNOWN_COUNTRY, 40, 40), ("KZ", 40, 40)]


@pytest.mark.parametrize("geoip", [True, False])
def test_the_weekly_report_lists_countries_only_with_the_database(
    data_dir: Path, clock: ManualClock, database: Path, geoip: bool
) -> None:
    app = make_app(data_dir, clock, database if geoip else None)
    with TestClient(app, headers={"user-agent": CHROME}, client=(KZ, 40000)) as client:
        view(client, visitor())  # a Tuesday: next Monday's report covers its week
        clock.advance(timedelta(days=7))
        token = app.service.registry.create_token("ops", admin=True)
        answer = client.get("/v1/admin/report", params={"org": "acme"},
                            headers={"Authorization": f"Bearer {token}"})  # fmt: skip
    assert answer.status_code == 200, answer.text
    assert ("Countries" in answer.text) is geoip
    assert (">KZ<" in answer.text) is geoip
