"""Where time comes from: the system clock in service, a manual one in tests and the demo.

Two readings. ``now()`` is the wall clock: it dates events and names days, and it can
step (NTP corrections, a VM migrated, a wrong clock at boot). ``monotonic()`` only
moves forward, at the rate of real time: rate limits, windows and lifetimes measure
intervals on it, so a step of the wall clock neither frees nor locks anything.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...

    def monotonic(self) -> float:
        """Seconds from an arbitrary start; never goes back, unmoved by wall-clock steps."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()


class ManualClock:
    """A clock that moves only when told to."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("ManualClock needs a timezone-aware start time")
        self._now = start.astimezone(UTC)
        self._monotonic = 0.0

    def now(self) -> datetime:
        return self._now

    def monotonic(self) -> float:
        return self._monotonic

    def advance(self, delta: timedelta) -> None:
        """Time passes: both readings move."""
        self._now += delta
        self._monotonic += max(0.0, delta.total_seconds())

    def set(self, moment: datetime) -> None:
        """Time passes until ``moment`` (going back moves the wall clock alone)."""
        self.advance(moment.astimezone(UTC) - self._now)

    def step(self, delta: timedelta) -> None:
        """The wall clock jumps by ``delta`` while no time passes, as when NTP steps it."""
        self._now += delta
