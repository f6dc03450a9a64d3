"""The country of an address (``--geoip``), from a database the tests write themselves."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.countries import DE, KZ, KZ_V6, RU, geoip_database
from tourviews.ingest.countries import Countries, GeoipError, open_countries, read_database


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return geoip_database(tmp_path_factory.mktemp("geoip"))


@pytest.fixture
def countries(database: Path) -> Countries:
    found = open_countries(database)
    assert found is not None
    return found


LISTED = [(KZ, "KZ"), (KZ_V6, "KZ"), (RU, "RU"), (DE, "DE"), ("100.200.3.4", "US"),
          (f"::ffff:{KZ}", "KZ")]  # fmt: skip
UNLISTED = ["10.1.2.3", "192.168.0.7", "172.16.5.5", "127.0.0.1", "::1", "fe80::1%eth0",
            "8.8.8.8", "192.0.2.5", "not an address", None]  # fmt: skip


@pytest.mark.parametrize(("address", "country"), LISTED)
def test_an_address_in_the_database_has_its_country(
    countries: Countries, address: str, country: str
) -> None:
    assert countries.of(address) == country


@pytest.mark.parametrize("address", UNLISTED)
def test_a_private_unlisted_or_unknown_address_has_no_country(
    countries: Countries, address: str | None
) -> None:
    # 192.0.2.0/24 is "ZZ" in the file: the code some databases give to "unknown"
    assert countries.of(address) is None


@pytest.mark.parametrize("first", [KZ, RU])
def test_two_countries_in_one_block_are_each_answered_in_any_order(
    countries: Countries, first: str
) -> None:
    for _ in range(3):  # the second round answers from what the first remembered
        for address in (first, RU if first == KZ else KZ):
            assert countries.of(address) == ("KZ" if address == KZ else "RU")


def test_a_remembered_block_answers_every_address_of_it(countries: Countries) -> None:
    assert countries.of("100.7.0.1") == "US"
    assert [countries.of(f"100.7.{n}.{n}") for n in range(0, 256, 15)] == ["US"] * 18
    assert countries.of("100.8.0.1") == "US"
    assert countries.of("101.7.0.1") is None


def test_a_full_memory_forgets_and_still_answers(database: Path) -> None:
    countries = Countries(read_database(database), entries=2)
    addresses = [KZ, DE, "100.1.0.1", "100.2.0.1", "10.0.0.1", KZ_V6, KZ]
    expected = ["KZ", "DE", "US", "US", None, "KZ", "KZ"]
    assert [countries.of(address) for address in addresses] == expected


def test_no_file_means_no_countries() -> None:
    assert open_countries(None) is None


def test_a_missing_file_is_refused_in_one_line_naming_the_flag_and_the_file(
    tmp_path: Path,
) -> None:
    missing = tmp_path / "nowhere.mmdb"
    with pytest.raises(GeoipError) as refused:
        open_countries(missing)
    message = str(refused.value)
    assert message.startswith(f"--geoip: cannot read {missing} ")
    assert "No such file" in message
    assert "\n" not in message


@pytest.mark.parametrize("content", [b"", b"not a database\n" * 100, b"\xab\xcd\xefMaxMind.com"])
def test_a_file_that_is_no_database_is_refused_in_one_line(tmp_path: Path, content: bytes) -> None:
    garbage = tmp_path / "countries.mmdb"
    garbage.write_bytes(content)
    with pytest.raises(GeoipError) as refused:
        open_countries(garbage)
    message = str(refused.value)
    assert message.startswith(f"--geoip: cannot read {garbage} as a MaxMind database")
    assert "\n" not in message


def test_a_directory_is_refused_in_one_line(tmp_path: Path) -> None:
    with pytest.raises(GeoipError) as refused:
        open_countries(tmp_path)
    assert str(refused.value).startswith(f"--geoip: cannot read {tmp_path} ")
