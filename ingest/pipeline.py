"""The ingest path as a list of steps.

A parsed beacon meets its tour, is stripped of identity (IP hash, source network,
user-agent class), and then passes the steps in order. Each step lets it through or
drops it with one ``Outcome``; what passes them all is counted. The steps:

    throttle        rate limits per source network, visitor, tour  -> THROTTLED (429)
    withdrawn       a visitor who withdrew consent minutes before   -> WITHDRAWN (204)
    check_origin    a page the tour's origin list does not name    -> ORIGIN (204)
    filter_bots     crawler, script and headless user-agents       -> BOT (204)
    bound_scenes    a scene or action name past the tour's bound   -> SCENE_LIMIT (204)
    guard_rotation  one network cycling through visitor IDs        -> ROTATION (204)
    dedup           a view or scene again within the window        -> DUPLICATE (204)
    within_visit    engagement or an action outside a visit        -> OUTSIDE_VISIT (204)

A counted view begins a visit; a counted scene, engage or action beacon within
30 minutes of the visit's last one continues it (``ingest.visits``).

The pipeline owns each beacon's fate (``settle``): judged, then stored through the
``Sink`` (a counted event as a row, a silent drop as a counter), and taken back if
the store fails, so that its retry counts. The HTTP endpoint only maps the outcome
to an answer.

Limits and windows measure time on the monotonic clock (``Hit.moment``), so a step
of the wall clock neither locks a sender out nor reopens a window.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from ingest.beacon import Beacon
from ingest.committer import Overloaded, StorageFailed
from ingest.dedup import DEDUPLICATED, Deduplicator, dedup_key
from ingest.privacy import IpHasher
from ingest.rotation import RotationGuard
from ingest.scenes import SceneBound
from ingest.throttle import Limiter
from ingest.useragent import Agent
from ingest.visits import Visits
from ingest.withdrawn import Withdrawn
from ingest.writer import DropKey, EventRow
from storage.outcomes import Outcome
from storage.registry import Tour

# Dropped beacons that are still answered 204: a sender cannot tell how it was classified.
SILENT_DROPS = frozenset(
    (Outcome.WITHDRAWN, Outcome.ORIGIN, Outcome.BOT, Outcome.SCENE_LIMIT, Outcome.ROTATION,
     Outcome.DUPLICATE, Outcome.OUTSIDE_VISIT)
)  # fmt: skip


# Refused before anything is stored: counted as drops, not waited for.
REFUSED = frozenset((Outcome.INVALID, Outcome.UNKNOWN_TOUR, Outcome.THROTTLED))


class Sink(Protocol):
    """Where judged beacons are stored, durably: each awaitable resolves once on disk."""

    def add_row(self, row: EventRow) -> Awaitable[None]: ...

    def add_drop(self, key: DropKey, wait: bool) -> Awaitable[None] | None: ...


class Unavailable(Exception):
    """A beacon that could not be stored: nothing of it counts (answered 503)."""

    def __init__(self, error: str) -> None:
        super().__init__(error)
        self.error = error


@dataclass(slots=True)
class Hit:
    """A beacon with what is kept of its sender."""

    beacon: Beacon
    tour: Tour | None
    at: datetime  # wall clock: when it is stored as having happened
    moment: float  # monotonic clock: for the windows and limits
    ip_hash: bytes  # stored
    source: bytes  # the sender's network, for limits and the rotation guard; never stored
    agent: Agent
    origin: str | None  # the page's origin, as the browser sent it
    scene: str | None  # the scene kept with it (a view's scene past the bound is not)
    retry_after: float = 0.0


# Engagement and actions, which are not deduplicated (``DEDUPLICATED``), count only
# inside a visit.
WITHIN_VISIT = frozenset(("engage", "action"))

Step = Callable[[Hit], Outcome | None]


class Pipeline:
    def __init__(
        self,
        tours: Callable[[], Mapping[str, Tour]],
        hasher: IpHasher,
        limiter: Limiter,
        deduplicator: Deduplicator,
        rotation: RotationGuard,
        scenes: SceneBound,
        withdrawn: Withdrawn | None = None,
        actions: SceneBound | None = None,
        visits: Visits | None = None,
        sink: Sink | None = None,
    ) -> None:
        self._tours = tours
        self.sink = sink
        self.withdrawn = withdrawn or Withdrawn()
        self.visits = visits or Visits()
        # action names are bounded like scene names, each tour's apart from its scenes
        self._actions = actions or SceneBound(scenes.max_scenes, declared=False)
        self._hasher = hasher
        self._limiter = limiter
        self._deduplicator = deduplicator
        self._rotation = rotation
        self._scenes = scenes
        self.steps: tuple[Step, ...] = (
            self.throttle,
            self.after_withdrawal,
            self.check_origin,
            self.filter_bots,
            self.bound_scenes,
            self.guard_rotation,
            self.dedup,
            self.within_visit,
        )

    def identify(
        self,
        beacon: Beacon,
        address: str | None,
        agent: Agent,
        now: datetime,
        moment: float,
        origin: str | None = None,
    ) -> Hit:
        """Keep only the hashes and the user-agent class of the sender."""
        ip_hash, source = self._hasher.hashes(address, now)
        tour = self._tours().get(beacon.tour)
        return Hit(beacon, tour, now, moment, ip_hash, source, agent, origin, beacon.scene)

    async def settle(self, hit: Hit) -> Outcome:
        """Judge ``hit`` and store what it became; raises ``Unavailable`` if it cannot be.

        A refused beacon (unknown tour, throttled) is counted without waiting; any
        other is on disk when this returns. A counted one whose store failed is taken
        back, so that its retry counts rather than being a duplicate.
        """
        outcome = self.run(hit)
        if outcome in REFUSED:
            sender = hit.source if outcome is Outcome.THROTTLED else hit.ip_hash
            tour = "" if outcome is Outcome.UNKNOWN_TOUR else hit.beacon.tour
            self.refuse(outcome, tour, sender, hit.at)
            return outcome
        try:
            await self._store(outcome, hit)
        except Overloaded:
            self._take_back(outcome, hit)
            raise Unavailable("the write queue is full") from None
        except StorageFailed:
            self._take_back(outcome, hit)
            raise Unavailable("storage failed") from None
        return outcome

    def refuse(self, outcome: Outcome, tour: str, sender: bytes, now: datetime) -> None:
        """Count a beacon answered with an error (not waited for: nothing was accepted)."""
        self._drop(outcome, tour, sender, now, wait=False)

    def _drop(
        self, outcome: Outcome, tour: str, sender: bytes, now: datetime, wait: bool
    ) -> Awaitable[None] | None:
        """Count a beacon not counted, under its UTC hour."""
        assert self.sink is not None
        hour = now.replace(minute=0, second=0, microsecond=0, tzinfo=None)
        return self.sink.add_drop((hour, tour, sender, outcome), wait)

    def _store(self, outcome: Outcome, hit: Hit) -> Awaitable[None]:
        assert self.sink is not None
        beacon = hit.beacon
        if outcome is Outcome.COUNTED:
            agent = hit.agent
            row = (hit.at.replace(tzinfo=None), beacon.tour, beacon.kind, hit.scene,
                   beacon.visitor, hit.ip_hash, agent.device, agent.browser, agent.os,
                   beacon.seconds, beacon.action)  # fmt: skip
            return self.sink.add_row(row)
        assert outcome in SILENT_DROPS
        # A source stopped for what its network did is reported as that network; nothing
        # ties a withdrawn visitor's late beacon to an address.
        sender = hit.ip_hash
        if outcome is Outcome.ROTATION:
            sender = hit.source
        elif outcome is Outcome.WITHDRAWN:
            sender = b""
        done = self._drop(outcome, beacon.tour, sender, hit.at, wait=True)
        assert done is not None
        return done

    def _take_back(self, outcome: Outcome, hit: Hit) -> None:
        if outcome is Outcome.COUNTED:
            self.uncount(hit)

    def run(self, hit: Hit) -> Outcome:
        if hit.tour is None:
            return Outcome.UNKNOWN_TOUR
        for step in self.steps:
            if (dropped := step(hit)) is not None:
                return dropped
        beacon = hit.beacon
        if hit.scene is not None:
            self._scenes.record(beacon.tour, hit.scene, hit.source)
        if beacon.kind == "view":
            self.visits.begin(beacon.tour, beacon.visitor, hit.moment, hit.at.toordinal())
        elif beacon.kind == "scene":
            self.visits.extend(beacon.tour, beacon.visitor, hit.moment, hit.at.toordinal())
        elif beacon.action is not None:
            self._actions.record(beacon.tour, beacon.action, hit.source)
        return Outcome.COUNTED

    def throttle(self, hit: Hit) -> Outcome | None:
        keys = (hit.source, hit.beacon.visitor, hit.beacon.tour)
        hit.retry_after = self._limiter.admit(keys, hit.moment)
        return Outcome.THROTTLED if hit.retry_after > 0.0 else None

    def after_withdrawal(self, hit: Hit) -> Outcome | None:
        """A beacon sent before a withdrawal may arrive after its erasure: it is dropped."""
        return Outcome.WITHDRAWN if self.withdrawn.recent(hit.beacon.visitor, hit.moment) else None

    def check_origin(self, hit: Hit) -> Outcome | None:
        # A beacon without an Origin (a script) is judged by the other steps: only a
        # named, foreign page is refused.
        # "null" is what a browser sends when it will not say (a no-referrer page, an
        # https page beaconing to http): no better evidence than no header at all.
        assert hit.tour is not None
        if hit.origin is None or hit.origin == "null" or hit.tour.allows(hit.origin):
            return None
        return Outcome.ORIGIN

    def filter_bots(self, hit: Hit) -> Outcome | None:
        return Outcome.BOT if hit.agent.device == "bot" else None

    def bound_scenes(self, hit: Hit) -> Outcome | None:
        assert hit.tour is not None
        action = hit.beacon.action
        if action is not None and not self._actions.admits(hit.tour, action, hit.source):
            return Outcome.SCENE_LIMIT
        if hit.scene is None or self._scenes.admits(hit.tour, hit.scene, hit.source):
            return None
        if hit.beacon.kind == "scene":
            return Outcome.SCENE_LIMIT
        hit.scene = None  # another event is counted; its scene field is not kept
        return None

    def guard_rotation(self, hit: Hit) -> Outcome | None:
        beacon = hit.beacon
        rotating = self._rotation.is_rotating(hit.source, beacon.tour, beacon.visitor, hit.moment)
        return Outcome.ROTATION if rotating else None

    def dedup(self, hit: Hit) -> Outcome | None:
        if hit.beacon.kind not in DEDUPLICATED:
            return None
        duplicate = self._deduplicator.is_duplicate(key_of(hit.beacon), hit.moment)
        return Outcome.DUPLICATE if duplicate else None

    def within_visit(self, hit: Hit) -> Outcome | None:
        beacon = hit.beacon
        if beacon.kind not in WITHIN_VISIT:
            return None
        going_on = self.visits.extend(beacon.tour, beacon.visitor, hit.moment, hit.at.toordinal())
        return None if going_on else Outcome.OUTSIDE_VISIT

    def uncount(self, hit: Hit) -> None:
        """A counted hit was not stored (503): its retry must count, not be a duplicate."""
        if hit.beacon.kind in DEDUPLICATED:
            self._deduplicator.forget(key_of(hit.beacon), hit.moment)

    def hashes(self, address: str | None, now: datetime) -> tuple[bytes, bytes]:
        """(stored IP hash, source network) of an address."""
        return self._hasher.hashes(address, now)

    def hash_address(self, address: str | None, now: datetime) -> bytes:
        return self._hasher.hash(address, now)


def key_of(beacon: Beacon) -> tuple[str, str | None, str]:
    return dedup_key(beacon.tour, beacon.kind, beacon.scene, beacon.visitor)
