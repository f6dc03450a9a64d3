"""The salts of Redis mode (tourviews.storage.salts.SharedSalts), on a real redis-server.

Redis deletes a salt by its own clock (``EXAT``), so each test takes its day from
Redis' ``TIME`` and drives a manual clock from there: they pass on any date, and under
libfaketime (make soak).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import redis

from tests.redis_server import RedisServer, redis_now, redis_server
from tourviews.modes import salts_ahead, shared_salts
from tourviews.storage.clock import ManualClock
from tourviews.storage.errors import SecretError, StorageError
from tourviews.storage.salts import SHARED_PREFIX, day_start

SECRET = b"shared-salts-test-secret-" + b"s" * 20


def at(day_of: datetime, hour: int, minute: int = 0) -> datetime:
    """``hour:minute`` UTC on the day of ``day_of``."""
    return day_of.replace(hour=hour, minute=minute, second=0, microsecond=0)


def test_a_days_salt_is_one_for_every_process_sealed_and_gone_after_48_hours(
    tmp_path: Path,
) -> None:
    with redis_server(tmp_path / "redis") as url:
        clock = ManualClock(redis_now(url))
        today = clock.now().date()
        one, other = shared_salts(url, SECRET, clock), shared_salts(url, SECRET, clock)
        salt = one.salt(today)
        assert other.salt(today) == salt and len(salt) == 32
        assert one.salt(today + timedelta(days=1)) != salt  # each day its own
        client = redis.Redis.from_url(url)
        name = f"{SHARED_PREFIX}{today.isoformat()}"
        assert salt not in client.get(name)  # type: ignore[operator]  # sealed
        death = day_start(today) + timedelta(hours=48)
        assert client.expiretime(name) == int(death.timestamp())
        with pytest.raises(SecretError):
            shared_salts(url, b"another-secret-" + b"o" * 30, clock).salt(today)
        with pytest.raises(ValueError):
            one.salt(today - timedelta(days=2))  # its 48 hours are over: never made again


def test_tomorrows_salt_is_taken_ahead_and_serves_midnight_without_redis(
    tmp_path: Path,
) -> None:
    server = RedisServer(tmp_path / "redis")
    server.start()
    clock = ManualClock(at(redis_now(server.url), 22, 30))
    today = clock.now().date()
    salts = shared_salts(server.url, SECRET, clock)
    tomorrow = today + timedelta(days=1)

    async def scenario() -> None:
        ahead = asyncio.create_task(salts_ahead(salts, clock, lambda: True, every=0.01))
        await asyncio.sleep(0.3)
        assert salts.holds(today)  # today's, at once
        assert not salts.holds(tomorrow)  # more than an hour before midnight
        clock.advance(timedelta(minutes=31))  # 23:01
        for _ in range(100):
            if salts.holds(tomorrow):
                break
            await asyncio.sleep(0.01)
        ahead.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await ahead
        assert salts.holds(tomorrow)

    try:
        asyncio.run(scenario())
    finally:
        server.stop()
    clock.advance(timedelta(hours=1))  # past midnight, with Redis away
    assert len(salts.salt(tomorrow)) == 32  # no call to Redis: it was taken ahead
    with pytest.raises(StorageError):
        salts.salt(tomorrow + timedelta(days=1))


def test_a_salt_not_taken_ahead_is_logged_once_in_one_line_and_the_loop_goes_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with redis_server(tmp_path / "redis") as url:
        # a clock three days behind Redis': Redis drops each offered salt at once (EXAT
        # in its past), so every turn fails "past its lifetime". At noon, so that only
        # today's salt is due: from 23:00 tomorrow's would be taken ahead too
        clock = ManualClock(at(redis_now(url) - timedelta(days=3), 12))
        salts = shared_salts(url, SECRET, clock)
        turns = 0

        def running() -> bool:
            nonlocal turns
            turns += 1
            return turns <= 20

        async def scenario() -> None:
            await salts_ahead(salts, clock, running, every=0.001)

        with caplog.at_level(logging.WARNING, logger="tourviews"):
            asyncio.run(scenario())  # ends on the flag, not in an exception
    assert turns == 21 and not salts.holds(clock.now().date())
    lines = [record.getMessage() for record in caplog.records]
    assert len(lines) == 1, lines
    assert "was not taken ahead" in lines[0] and "past its lifetime" in lines[0]
    assert "\n" not in lines[0]
