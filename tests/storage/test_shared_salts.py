"""The salts of Redis mode (storage.salts.SharedSalts), on a real redis-server."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
import redis

from storage.clock import ManualClock
from storage.errors import SecretError, StorageError
from storage.salts import SHARED_PREFIX, day_start
from tests.redis_server import RedisServer, redis_server
from tourviews.service import salts_ahead, shared_salts

SECRET = b"shared-salts-test-secret-" + b"s" * 20
DAY = date(2026, 12, 2)


def test_a_days_salt_is_one_for_every_process_sealed_and_gone_after_48_hours(
    tmp_path: Path,
) -> None:
    clock = ManualClock(datetime(2026, 12, 2, 9, 0, tzinfo=UTC))
    with redis_server(tmp_path / "redis") as url:
        one, other = shared_salts(url, SECRET, clock), shared_salts(url, SECRET, clock)
        salt = one.salt(DAY)
        assert other.salt(DAY) == salt and len(salt) == 32
        assert one.salt(DAY + timedelta(days=1)) != salt  # each day its own
        client = redis.Redis.from_url(url)
        name = f"{SHARED_PREFIX}{DAY.isoformat()}"
        assert salt not in client.get(name)  # type: ignore[operator]  # sealed
        death = day_start(DAY) + timedelta(hours=48)
        assert client.expiretime(name) == int(death.timestamp())
        with pytest.raises(SecretError):
            shared_salts(url, b"another-secret-" + b"o" * 30, clock).salt(DAY)
        with pytest.raises(ValueError):
            one.salt(DAY - timedelta(days=2))  # its 48 hours are over: never made again


def test_tomorrows_salt_is_taken_ahead_and_serves_midnight_without_redis(
    tmp_path: Path,
) -> None:
    clock = ManualClock(datetime(2026, 12, 2, 22, 30, tzinfo=UTC))
    server = RedisServer(tmp_path / "redis")
    server.start()
    salts = shared_salts(server.url, SECRET, clock)
    tomorrow = DAY + timedelta(days=1)

    async def scenario() -> None:
        ahead = asyncio.create_task(salts_ahead(salts, clock, lambda: True, every=0.01))
        await asyncio.sleep(0.3)
        assert salts.holds(DAY)  # today's, at once
        assert not salts.holds(tomorrow)  # more than an hour before midnight
        clock.advance(timedelta(minutes=31))  # 23:01
        for _ in range(100):
            if salts.holds(tomorrow):
                break
            await asyncio.sleep(0.01)
        ahead.cancel()
        assert salts.holds(tomorrow)

    try:
        asyncio.run(scenario())
    finally:
        server.stop()
    clock.advance(timedelta(hours=1))  # past midnight, with Redis away
    assert len(salts.salt(tomorrow)) == 32  # no call to Redis: it was taken ahead
    with pytest.raises(StorageError):
        salts.salt(tomorrow + timedelta(days=1))
