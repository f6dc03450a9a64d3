"""``/v1/tours/{tour}/now`` and the opt-in public counter."""

from __future__ import annotations

from datetime import timedelta

from starlette.testclient import TestClient

from tests.conftest import view, visitor
from tourviews.app import TourviewsApp
from tourviews.storage.clock import ManualClock


def test_now_counts_the_visitors_of_the_last_five_minutes(
    app: TourviewsApp, client: TestClient, clock: ManualClock
) -> None:
    token = app.service.registry.create_token("acme")
    auth = {"Authorization": f"Bearer {token}"}
    early, late = visitor(), visitor()
    view(client, early)
    clock.advance(timedelta(minutes=3))
    view(client, late)
    view(client, late, event="scene", scene="hall")  # one visitor, two beacons
    assert client.get("/v1/tours/t1/now", headers=auth).json() == {"visitors": 2}
    clock.advance(timedelta(minutes=2, seconds=1))
    assert client.get("/v1/tours/t1/now", headers=auth).json() == {"visitors": 1}
    clock.advance(timedelta(minutes=3))
    assert client.get("/v1/tours/t1/now", headers=auth).json() == {"visitors": 0}
    assert client.get("/v1/tours/t1/now").status_code == 401
    other = app.service.registry.create_token("globex")
    answer = client.get("/v1/tours/t1/now", headers={"Authorization": f"Bearer {other}"})
    assert answer.status_code == 404


def test_a_tour_without_the_public_counter_answers_404(
    app: TourviewsApp, client: TestClient
) -> None:
    view(client, visitor())
    for path in ("/v1/tours/t1/counter", "/v1/tours/t1/counter.svg", "/v1/tours/none/counter"):
        answer = client.get(path)
        assert answer.status_code == 404, path
        assert answer.json()["field"] == "tour"


def test_the_public_counter_shows_views_to_date_to_anyone(
    app: TourviewsApp, client: TestClient, clock: ManualClock
) -> None:
    app.service.registry.put_tour("t1", "acme", public_counter=True)
    for _ in range(3):
        view(client, visitor())
    clock.advance(timedelta(days=32))  # past retention: the first day is in rollups only
    app.service.keep_house()
    with app.service.db.using() as cursor:
        assert cursor.execute("SELECT count(*) FROM events").fetchall() == [(0,)]
    view(client, visitor())
    answer = client.get("/v1/tours/t1/counter")
    assert answer.json() == {"tour": "t1", "views": 4}
    assert answer.headers["access-control-allow-origin"] == "*"
    assert answer.headers["cache-control"] == "public, max-age=60"
    badge = client.get("/v1/tours/t1/counter.svg")
    assert badge.headers["content-type"].startswith("image/svg+xml")
    assert badge.headers["cache-control"] == "public, max-age=60"
    assert b">4</text>" in badge.content and badge.content.startswith(b"<svg")
    # Updated without a word about the counter: the setting is kept; then turned off.
    app.service.registry.put_tour("t1", "acme", ["https://tours.example.com"])
    assert client.get("/v1/tours/t1/counter").status_code == 200
    app.service.registry.put_tour("t1", "acme", public_counter=False)
    assert client.get("/v1/tours/t1/counter").status_code == 404
