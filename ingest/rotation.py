"""Visitor-ID rotation: one address presenting ever new visitor IDs to one tour."""

from __future__ import annotations


class RotationGuard:
    """Distinct visitor IDs per (IP hash, tour) within the window; past ``limit``, new IDs fail."""

    def __init__(self, window_seconds: float, limit: int = 50) -> None:
        self.window = window_seconds
        self.limit = limit
        self._seen: dict[tuple[bytes, str], dict[str, float]] = {}

    def is_rotating(self, ip_hash: bytes, tour: str, visitor: str, now: float) -> bool:
        visitors = self._seen.get((ip_hash, tour))
        if visitors is None:
            self._seen[(ip_hash, tour)] = {visitor: now}
            return False
        if visitor not in visitors and len(visitors) >= self.limit:
            horizon = now - self.window
            for old in [v for v, at in visitors.items() if at < horizon]:
                del visitors[old]
            if len(visitors) >= self.limit:
                return True
        visitors[visitor] = now
        return False

    def forget_idle(self, now: float) -> None:
        """Drop every source with no visitor seen within the window."""
        horizon = now - self.window
        for key in [k for k, v in self._seen.items() if max(v.values()) < horizon]:
            del self._seen[key]
