"""IP hashes under daily salts: stable within a day, different across days, dead after 48 h."""

from __future__ import annotations

import ipaddress
import tempfile
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tourviews.ingest.privacy import IpHasher
from tourviews.storage.clock import ManualClock
from tourviews.storage.errors import SecretError, StorageError
from tourviews.storage.salts import SALT_FILE, SaltStore
from tourviews.storage.secret import derive_key

KEY = derive_key(b"x" * 32, "salts")
NOON = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


@pytest.fixture
def salts(tmp_path: Path, clock: ManualClock) -> SaltStore:
    return SaltStore(tmp_path / SALT_FILE, KEY, clock)


@pytest.fixture
def hasher(salts: SaltStore) -> IpHasher:
    return IpHasher(salts)


def test_hash_is_16_bytes(hasher: IpHasher) -> None:
    assert len(hasher.hash("203.0.113.7", NOON)) == 16


def test_hash_is_stable_within_a_day(hasher: IpHasher) -> None:
    morning = NOON.replace(hour=0, minute=0, second=1)
    night = NOON.replace(hour=23, minute=59, second=59)
    assert hasher.hash("203.0.113.7", morning) == hasher.hash("203.0.113.7", night)


def test_hash_differs_across_days(hasher: IpHasher, clock: ManualClock) -> None:
    today = hasher.hash("203.0.113.7", NOON)
    clock.advance(timedelta(days=1))
    assert hasher.hash("203.0.113.7", NOON + timedelta(days=1)) != today


def test_hash_is_stable_across_a_restart(tmp_path: Path, clock: ManualClock) -> None:
    first = IpHasher(SaltStore(tmp_path / SALT_FILE, KEY, clock)).hash("2001:db8::1", NOON)
    again = IpHasher(SaltStore(tmp_path / SALT_FILE, KEY, clock)).hash("2001:db8::1", NOON)
    assert first == again


def test_different_addresses_hash_differently(hasher: IpHasher) -> None:
    assert hasher.hash("203.0.113.7", NOON) != hasher.hash("203.0.113.8", NOON)


def test_spellings_of_one_address_hash_alike(hasher: IpHasher) -> None:
    assert hasher.hash("2001:db8::1", NOON) == hasher.hash("2001:0db8:0:0:0:0:0:1", NOON)
    assert hasher.hash("::ffff:203.0.113.7", NOON) == hasher.hash("203.0.113.7", NOON)


def test_prefix_truncation_hashes_a_whole_subnet_alike(salts: SaltStore) -> None:
    hasher = IpHasher(salts, prefix_v4=24, prefix_v6=48)
    assert hasher.hash("203.0.113.7", NOON) == hasher.hash("203.0.113.200", NOON)
    assert hasher.hash("203.0.113.7", NOON) != hasher.hash("203.0.114.7", NOON)
    assert hasher.hash("2001:db8:1::1", NOON) == hasher.hash("2001:db8:1:ffff::2", NOON)
    assert hasher.hash("2001:db8:1::1", NOON) != hasher.hash("2001:db8:2::1", NOON)


def test_salt_of_a_day_is_gone_48_hours_after_the_day_began(
    salts: SaltStore, clock: ManualClock, tmp_path: Path
) -> None:
    day = NOON.date()
    salt = salts.salt(day)
    clock.set(datetime(2026, 11, 25, 23, 59, 59, tzinfo=UTC))
    salts.expire()
    assert day in salts.days()
    clock.set(datetime(2026, 11, 26, 0, 0, tzinfo=UTC))
    assert salts.expire() == [day]
    assert day not in salts.days()
    # Gone from disk too: a fresh store over the same file knows nothing of it.
    reloaded = SaltStore(tmp_path / SALT_FILE, KEY, clock)
    assert day not in reloaded.days()
    with pytest.raises(ValueError, match="past its lifetime"):
        reloaded.salt(day)
    assert salt not in (tmp_path / SALT_FILE).read_bytes()


def test_salts_are_sealed_at_rest(salts: SaltStore, tmp_path: Path) -> None:
    salt = salts.salt(NOON.date())
    stored = (tmp_path / SALT_FILE).read_bytes()
    assert salt not in stored
    assert salt.hex().encode() not in stored
    assert oct((tmp_path / SALT_FILE).stat().st_mode & 0o777) == oct(0o600)


def test_salts_sealed_under_another_secret_are_refused(
    salts: SaltStore, tmp_path: Path, clock: ManualClock
) -> None:
    salts.salt(NOON.date())
    with pytest.raises(SecretError, match="another instance secret"):
        SaltStore(tmp_path / SALT_FILE, derive_key(b"y" * 32, "salts"), clock)


def test_hasher_switches_salt_at_midnight_without_restart(
    hasher: IpHasher, clock: ManualClock, salts: SaltStore
) -> None:
    before = hasher.hash("203.0.113.7", NOON.replace(hour=23, minute=59))
    midnight = datetime(2026, 11, 25, tzinfo=UTC)
    clock.set(midnight)
    after = hasher.hash("203.0.113.7", midnight)
    assert before != after
    assert salts.days() == [date(2026, 11, 24), date(2026, 11, 25)]


@given(st.ip_addresses(), st.integers(0, 86_399))
def test_hash_is_the_same_all_day_for_any_address(address: object, second: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        hasher = IpHasher(SaltStore(Path(folder) / SALT_FILE, KEY, ManualClock(NOON)))
        text = str(ipaddress.ip_address(str(address)))
        moment = NOON.replace(hour=0) + timedelta(seconds=second)
        assert hasher.hash(text, moment) == hasher.hash(text, NOON)


def test_unreadable_salt_file_is_a_clear_error(tmp_path: Path, clock: ManualClock) -> None:
    (tmp_path / SALT_FILE).write_bytes(b"")
    with pytest.raises(StorageError, match=r"salts\.json"):
        SaltStore(tmp_path / SALT_FILE, KEY, clock)
