"""Duplicate views: the same visitor again within the window after its last counted one."""

from __future__ import annotations

from collections.abc import Hashable


class Deduplicator:
    """The last counted time per key ((tour, visitor) or (tour, scene, visitor))."""

    def __init__(self, window_seconds: float, max_keys: int = 1_000_000) -> None:
        self.window = window_seconds
        self._counted: dict[Hashable, float] = {}
        self._max_keys = max_keys

    def is_duplicate(self, key: Hashable, now: float) -> bool:
        """True within the window after the key's last counted beacon; else counts it now."""
        last = self._counted.get(key)
        if last is not None and now - last < self.window:
            return True
        self.remember(key, now)
        return False

    def remember(self, key: Hashable, at: float) -> None:
        if len(self._counted) >= self._max_keys and key not in self._counted:
            self._forget_expired(at)
        self._counted.pop(key, None)  # keep the dict ordered by last counted time
        self._counted[key] = at

    def _forget_expired(self, now: float) -> None:
        horizon = now - self.window
        expired = 0
        for last in self._counted.values():
            if last >= horizon:
                break
            expired += 1
        if expired == 0:  # all live: evict the oldest tenth to stay bounded
            expired = max(1, self._max_keys // 10)
        for key in list(self._counted)[:expired]:
            del self._counted[key]

    def __len__(self) -> int:
        return len(self._counted)
