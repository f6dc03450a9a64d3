"""The visits going on: an engage or action beacon counts only inside one.

A visit begins with a counted view and goes on with every counted beacon of the
same visitor and tour that follows within ``IDLE`` of the one before, until the UTC
midnight after it began (a UTC day's visits are whole, and rolled up with it). Engagement
and actions outside a visit (a script that never viewed, a tab left for an hour)
are dropped as ``outside_visit``: they would add time and clicks to no visit.
``tourviews.analytics.visits`` cuts the stored events into visits by the same rule.
"""

from __future__ import annotations

from tourviews.storage.visit import IDLE_SECONDS

IDLE = float(IDLE_SECONDS)
MAX_KEYS = 1_000_000  # visits remembered; past it the oldest half is forgotten


class Visits:
    """The last counted moment of each (tour, visitor) pair's visit, on the monotonic clock,
    and the UTC day it began on."""

    def __init__(self, idle: float = IDLE, max_keys: int = MAX_KEYS) -> None:
        self.idle = idle
        self._last: dict[int, tuple[float, int]] = {}  # hash of (tour, visitor) -> (last, day)
        self._max_keys = max_keys

    def begin(self, tour: str, visitor: str, moment: float, day: int) -> None:
        """A view was counted on UTC ``day`` (an ordinal): a visit begins."""
        if len(self._last) >= self._max_keys:
            # dicts keep insertion order, and a key is re-inserted on each beacon: the
            # first half are the visits idle longest
            for stale in list(self._last)[: self._max_keys // 2]:
                del self._last[stale]
        key = hash((tour, visitor))
        self._last.pop(key, None)
        self._last[key] = (moment, day)

    def extend(self, tour: str, visitor: str, moment: float, day: int) -> bool:
        """A beacon of the visit, if one goes on: it goes on from now. False: no visit."""
        key = hash((tour, visitor))
        found = self._last.get(key)
        if found is None or moment - found[0] > self.idle or day != found[1]:
            return False
        del self._last[key]
        self._last[key] = (max(found[0], moment), day)
        return True
