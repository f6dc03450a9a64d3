"""Duplicate views: the same visitor again within the window after its last counted one."""

from __future__ import annotations

from collections.abc import Hashable
from typing import TypeVar

# A key is kept as its 64-bit hash: about 100 bytes of state per key instead of ~230
# for the tuple and its strings. Two keys collide with odds of ~n²/2⁶⁵ (3 in 10⁸ at a
# million keys); a collision makes one beacon a duplicate. The hashes are salted per
# process, which is fine: the state is rebuilt from the stored events at start.
MAX_KEYS = 1_000_000

# The kinds deduplicated: engagement and actions repeat by nature (every scene change,
# every click), and count only inside a visit instead (``tourviews.ingest.rules.visits``).
DEDUPLICATED = frozenset(("view", "scene"))

Name = TypeVar("Name", str, bytes)  # a tour's or scene's name: text, or encoded for Redis
Visitor = TypeVar("Visitor", str, bytes)  # the visitor's ID, or its keyed hash (Redis)


def dedup_key(
    tour: Name, kind: str, scene: Name | None, visitor: Visitor
) -> tuple[Name, Name | None, Visitor]:
    """What a duplicate repeats: the tour, the scene of a scene event, the visitor.

    The one definition: the in-process ledger keys beacons by it, the restore at start
    keys the stored events by it (``tourviews.ingest.rules.restore``), and the Redis
    ledger names its dedup keys from its parts (``tourviews.ingest.rules.redis_ledger``).
    """
    return (tour, scene if kind == "scene" else None, visitor)


class Deduplicator:
    """The last counted time per key ((tour, visitor) or (tour, scene, visitor))."""

    def __init__(self, window_seconds: float, max_keys: int = MAX_KEYS) -> None:
        self.window = window_seconds
        self._counted: dict[int, float] = {}
        self._max_keys = max_keys

    def is_duplicate(self, key: Hashable, now: float) -> bool:
        """True within the window after the key's last counted beacon; else counts it now."""
        digest = hash(key)
        last = self._counted.get(digest)
        if last is not None and now - last < self.window:
            return True
        self._remember(digest, now)
        return False

    def forget(self, key: Hashable, at: float) -> None:
        """Take back the count of ``key`` at ``at`` (its commit failed), unless counted since."""
        digest = hash(key)
        if self._counted.get(digest) == at:
            del self._counted[digest]

    def remember(self, key: Hashable, at: float) -> None:
        """Record ``key`` as counted at ``at`` (in time order, as after a restart)."""
        self._remember(hash(key), at)

    def _remember(self, digest: int, at: float) -> None:
        if len(self._counted) >= self._max_keys and digest not in self._counted:
            self._forget_oldest(at)
        self._counted.pop(digest, None)  # keep the dict ordered by last counted time
        self._counted[digest] = at

    def _forget_oldest(self, now: float) -> None:
        # Expired keys sit at the front. When none has expired (a flood of fresh
        # visitor IDs), the oldest tenth goes: those visitors could count once more.
        horizon = now - self.window
        expired = 0
        for last in self._counted.values():
            if last >= horizon:
                break
            expired += 1
        for digest in list(self._counted)[: expired or max(1, self._max_keys // 10)]:
            del self._counted[digest]

    def __len__(self) -> int:
        return len(self._counted)
