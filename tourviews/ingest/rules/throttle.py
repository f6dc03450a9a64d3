"""Rate limits as GCRA (generic cell rate algorithm): one timestamp per key.

A key's state is its theoretical arrival time (TAT). A request at ``t`` is let in
when ``max(TAT, t) - t <= (burst - 1) * interval``; then TAT moves one interval on.
So a fresh key admits exactly ``burst`` requests at once, then one per interval.
The service runs the limiter on its event loop thread, which makes it exact under
concurrency without locks.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass

EPSILON = 1e-6  # as the shared ledger, which keeps times to the microsecond


@dataclass(frozen=True, slots=True)
class Rate:
    per_second: float
    burst: int

    def __post_init__(self) -> None:
        if not self.per_second > 0 or self.burst < 1:
            raise ValueError("a rate limit needs a positive rate and a burst of at least 1")

    @classmethod
    def per_minute(cls, count: float, burst: int) -> Rate:
        return cls(count / 60.0, burst)


class Gcra:
    """GCRA state of many keys under one rate; keys idle long enough are forgotten."""

    def __init__(self, rate: Rate, max_keys: int = 200_000) -> None:
        self.interval = 1.0 / rate.per_second
        self.tolerance = self.interval * (rate.burst - 1)
        self._tat: dict[Hashable, float] = {}
        self._max_keys = max_keys

    def wait(self, key: Hashable, now: float) -> tuple[float, float]:
        """(seconds until ``key`` may pass, its TAT if it passes now)."""
        tat = max(self._tat.get(key, now), now)
        wait = tat - now - self.tolerance
        # Sums of float intervals drift by ulps; that must not cost a request its place.
        return (wait if wait > EPSILON else 0.0), tat + self.interval

    def take(self, key: Hashable, tat: float, now: float) -> None:
        if len(self._tat) >= self._max_keys and key not in self._tat:
            self._forget_idle(now)
        self._tat[key] = tat

    def _forget_idle(self, now: float) -> None:
        # A key whose TAT has passed is indistinguishable from a new one.
        idle = [key for key, tat in self._tat.items() if tat <= now]
        for key in idle:
            del self._tat[key]
        # Still full: drop the oldest half; those keys start afresh (lenient, bounded).
        if len(self._tat) >= self._max_keys:
            for key in list(self._tat)[: self._max_keys // 2]:
                del self._tat[key]


class Limiter:
    """Several limits that a request must all pass; none is charged unless all pass."""

    def __init__(self, *limits: Gcra) -> None:
        self._limits = limits

    def admit(self, keys: tuple[Hashable, ...], now: float) -> float:
        """0.0 when admitted (and charged), else the seconds to wait."""
        tats = []
        for limit, key in zip(self._limits, keys, strict=True):
            wait, tat = limit.wait(key, now)
            if wait > 0.0:
                return wait
            tats.append(tat)
        for limit, key, tat in zip(self._limits, keys, tats, strict=True):
            limit.take(key, tat, now)
        return 0.0
