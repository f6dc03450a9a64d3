"""Visitor-ID rotation: one address presenting ever new visitor IDs to one tour."""

from __future__ import annotations

MAX_ENTRIES = 250_000  # visitor entries over all sources: ~100 bytes each, ~440 alone in a source


class RotationGuard:
    """Distinct visitor IDs per (IP hash, tour) within the window; past ``limit``, new IDs fail."""

    def __init__(self, window_seconds: float, limit: int = 50, max_entries: int = MAX_ENTRIES):
        self.window = window_seconds
        self.limit = limit
        self._max_entries = max_entries
        self._entries = 0
        # (ip_hash, tour) -> {hash(visitor): last seen}; sources in order of first sight
        self._seen: dict[tuple[bytes, str], dict[int, float]] = {}

    def is_rotating(self, ip_hash: bytes, tour: str, visitor: str, now: float) -> bool:
        source = (ip_hash, tour)
        visitors = self._seen.get(source)
        if visitors is None:
            if self._entries >= self._max_entries:
                self._forget_oldest_sources()
            visitors = self._seen[source] = {}
        digest = hash(visitor)
        if digest not in visitors:
            if len(visitors) >= self.limit:
                horizon = now - self.window
                expired = [v for v, at in visitors.items() if at < horizon]
                for old in expired:
                    del visitors[old]
                self._entries -= len(expired)
                if len(visitors) >= self.limit:
                    return True
            self._entries += 1
        visitors[digest] = now
        return False

    def forget_idle(self, now: float) -> None:
        """Drop every source with no visitor seen within the window."""
        horizon = now - self.window
        for source in [s for s, v in self._seen.items() if max(v.values(), default=0) < horizon]:
            self._entries -= len(self._seen.pop(source))

    def _forget_oldest_sources(self) -> None:
        # A flood of sources: the oldest tenth is forgotten and starts afresh.
        for source in list(self._seen)[: max(1, len(self._seen) // 10)]:
            self._entries -= len(self._seen.pop(source))

    @property
    def entries(self) -> int:
        return self._entries
