"""Tours and tokens: validation, idempotence, tokens kept only as hashes."""

from __future__ import annotations

from pathlib import Path

import pytest

from tourviews.storage.clock import ManualClock
from tourviews.storage.database import open_database
from tourviews.storage.errors import Conflict, InvalidValue
from tourviews.storage.registry import Principal, Registry


@pytest.fixture
def registry(data_dir: Path, clock: ManualClock) -> Registry:
    return Registry(open_database(data_dir), clock)


def test_registering_a_tour_twice_updates_it(registry: Registry) -> None:
    registry.put_tour("t1", "acme", scenes=["hall"])
    registry.put_tour("t1", "acme", ["https://Tours.Example.com"])
    tour = registry.tours["t1"]
    assert (tour.org, tour.origins) == ("acme", ("https://tours.example.com",))
    assert tour.scenes == frozenset(["hall"])  # not given: kept
    with pytest.raises(Conflict):
        registry.put_tour("t1", "globex")
    registry.put_tour("t1", "globex", move=True)
    tour = registry.tours["t1"]
    assert (tour.org, tour.origins) == ("globex", ("https://tours.example.com",))
    assert len(registry.tours) == 1


def test_tours_survive_reopening(data_dir: Path, clock: ManualClock) -> None:
    db = open_database(data_dir)
    Registry(db, clock).put_tour("t1", "acme")
    db.close()
    assert "t1" in Registry(open_database(data_dir), clock).tours


@pytest.mark.parametrize(
    ("tour", "org", "origins", "field"),
    [
        ("bad tour", "acme", [], "tour"),
        ("", "acme", [], "tour"),
        ("t1", "", [], "org"),
        ("t1", "a/b", [], "org"),
        ("t1", "acme", ["tours.example.com"], "origins"),
        ("t1", "acme", ["https://tours.example.com/path"], "origins"),
        ("t1", "acme", ["ftp://tours.example.com"], "origins"),
    ],
)
def test_bad_registration_names_the_field(
    registry: Registry, tour: str, org: str, origins: list[str], field: str
) -> None:
    with pytest.raises(InvalidValue) as raised:
        registry.put_tour(tour, org, origins)
    assert raised.value.field == field


def test_token_authenticates_as_its_organization(registry: Registry) -> None:
    token = registry.create_token("acme")
    admin = registry.create_token("ops", admin=True)
    assert registry.authenticate(token) == Principal("acme", admin=False)
    assert registry.authenticate(admin) == Principal("ops", admin=True)
    assert registry.authenticate(token[:-1] + ("A" if token[-1] != "A" else "B")) is None


def test_token_carries_at_least_256_random_bits(registry: Registry) -> None:
    tokens = {registry.create_token("acme") for _ in range(20)}
    assert len(tokens) == 20
    assert all(len(token) >= 3 + 43 for token in tokens)  # tv_ + 32 bytes in base64url


def test_tokens_are_not_stored_in_plaintext(registry: Registry, data_dir: Path) -> None:
    tokens = [registry.create_token("acme") for _ in range(5)]
    registry._db.close()
    for path in data_dir.rglob("*"):
        content = path.read_bytes()
        for token in tokens:
            assert token.encode() not in content, path
            assert token[3:].encode() not in content, path
