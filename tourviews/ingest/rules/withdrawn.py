"""Visitors who withdrew consent a moment ago, remembered in memory for a while.

A beacon the page sent just before ``forget()`` travels as a request of its own and
may arrive after the erasure; it must not bring the visitor back. The IDs are kept
in memory only (never stored) for ``WINDOW`` seconds, at most ``MAX_KEYS`` of them.
"""

from __future__ import annotations

WINDOW = 30 * 60.0  # seconds: a beacon in flight arrives long before
MAX_KEYS = 100_000


class Withdrawn:
    def __init__(self, window: float = WINDOW, max_keys: int = MAX_KEYS) -> None:
        self._window = window
        self._max_keys = max_keys
        self._until: dict[str, float] = {}  # visitor -> monotonic end, oldest first

    def add(self, visitor: str, moment: float) -> None:
        self._until.pop(visitor, None)
        self._until[visitor] = moment + self._window
        while len(self._until) > self._max_keys or (
            self._until and next(iter(self._until.values())) <= moment
        ):
            del self._until[next(iter(self._until))]

    def recent(self, visitor: str, moment: float) -> bool:
        until = self._until.get(visitor)
        return until is not None and moment < until
