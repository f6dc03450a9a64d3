"""The ingest path as a list of steps.

A parsed beacon meets its tour, is stripped of identity (IP hash, user-agent
class), and then passes the steps in order. Each step lets it through or drops it
with one ``Outcome``; what passes them all is counted. The steps:

    throttle        rate limits per IP hash, visitor and tour    -> THROTTLED (429)
    filter_bots     crawler, script and headless user-agents      -> BOT (204)
    guard_rotation  one address cycling through visitor IDs       -> ROTATION (204)
    dedup           the same visitor again within the window      -> DUPLICATE (204)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from ingest.beacon import Beacon
from ingest.dedup import Deduplicator
from ingest.privacy import IpHasher
from ingest.rotation import RotationGuard
from ingest.throttle import Limiter
from ingest.useragent import Agent
from storage.registry import Tour


class Outcome(StrEnum):
    COUNTED = "counted"
    BOT = "bot"
    DUPLICATE = "duplicate"
    ROTATION = "rotation"
    THROTTLED = "throttled"
    INVALID = "invalid"
    UNKNOWN_TOUR = "unknown_tour"


# Dropped beacons that are still answered 204: a sender cannot tell how it was classified.
SILENT_DROPS = frozenset((Outcome.BOT, Outcome.DUPLICATE, Outcome.ROTATION))


@dataclass(slots=True)
class Hit:
    """A beacon with what is kept of its sender."""

    beacon: Beacon
    tour: Tour | None
    at: datetime
    seconds: float  # ``at`` as a POSIX timestamp, for the windows and limits
    ip_hash: bytes
    agent: Agent
    retry_after: float = 0.0


Step = Callable[[Hit], Outcome | None]


class Pipeline:
    def __init__(
        self,
        tours: Callable[[], Mapping[str, Tour]],
        hasher: IpHasher,
        limiter: Limiter,
        deduplicator: Deduplicator,
        rotation: RotationGuard,
    ) -> None:
        self._tours = tours
        self._hasher = hasher
        self._limiter = limiter
        self._deduplicator = deduplicator
        self._rotation = rotation
        self.steps: tuple[Step, ...] = (
            self.throttle,
            self.filter_bots,
            self.guard_rotation,
            self.dedup,
        )

    def identify(self, beacon: Beacon, address: str | None, agent: Agent, now: datetime) -> Hit:
        """Keep only the IP hash and the user-agent class of the sender."""
        return Hit(
            beacon,
            self._tours().get(beacon.tour),
            now,
            now.timestamp(),
            self._hasher.hash(address, now),
            agent,
        )

    def run(self, hit: Hit) -> Outcome:
        if hit.tour is None:
            return Outcome.UNKNOWN_TOUR
        for step in self.steps:
            if (dropped := step(hit)) is not None:
                return dropped
        return Outcome.COUNTED

    def throttle(self, hit: Hit) -> Outcome | None:
        keys = (hit.ip_hash, hit.beacon.visitor, hit.beacon.tour)
        hit.retry_after = self._limiter.admit(keys, hit.seconds)
        return Outcome.THROTTLED if hit.retry_after > 0.0 else None

    def filter_bots(self, hit: Hit) -> Outcome | None:
        return Outcome.BOT if hit.agent.device == "bot" else None

    def guard_rotation(self, hit: Hit) -> Outcome | None:
        beacon = hit.beacon
        rotating = self._rotation.is_rotating(hit.ip_hash, beacon.tour, beacon.visitor, hit.seconds)
        return Outcome.ROTATION if rotating else None

    def dedup(self, hit: Hit) -> Outcome | None:
        duplicate = self._deduplicator.is_duplicate(_dedup_key(hit.beacon), hit.seconds)
        return Outcome.DUPLICATE if duplicate else None

    def uncount(self, hit: Hit) -> None:
        """A counted hit was not stored (503): its retry must count, not be a duplicate."""
        self._deduplicator.forget(_dedup_key(hit.beacon), hit.seconds)

    def hash_address(self, address: str | None, now: datetime) -> bytes:
        return self._hasher.hash(address, now)


def _dedup_key(beacon: Beacon) -> tuple[str, str | None, str]:
    return (beacon.tour, beacon.scene if beacon.kind == "scene" else None, beacon.visitor)
