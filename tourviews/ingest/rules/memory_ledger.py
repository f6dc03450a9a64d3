"""The in-process ledger: the shared-state rules in this process's memory, stored in DuckDB.

The embedded mode's backend of ``tourviews.ingest.rules.ledger.Ledger``. Its state
lives on the event loop's thread, which makes each rule exact under concurrency without locks; it is
rebuilt from the stored events at start (``tourviews.ingest.rules.restore``). The rules, in order:

    throttle        rate limits per source network, visitor, tour  -> THROTTLED (429)
    after_withdrawal  a visitor who withdrew consent minutes before -> WITHDRAWN (204)
    (the pipeline's verdict: origin, bots)                          -> ORIGIN, BOT (204)
    bound_scenes    a scene or action name past the tour's bound   -> SCENE_LIMIT (204)
    guard_rotation  one network cycling through visitor IDs        -> ROTATION (204)
    dedup           a view or scene again within the window        -> DUPLICATE (204)
    within_visit    engagement or an action outside a visit        -> OUTSIDE_VISIT (204)

A counted view begins a visit; a counted scene, engage or action beacon within
30 minutes of the visit's last one continues it (``tourviews.ingest.rules.visits``).

What a beacon became is stored through the ``Sink`` (a counted event as a row, a silent
drop as a counter) and taken back if the store fails, so that its retry counts.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Protocol

from tourviews.ingest.rules.dedup import DEDUPLICATED, Deduplicator, dedup_key
from tourviews.ingest.rules.ledger import (
    REFUSED,
    SILENT_DROPS,
    WITHIN_VISIT,
    Hit,
    Unavailable,
    drop_sender,
    hour_of,
)
from tourviews.ingest.rules.names import SceneBound
from tourviews.ingest.rules.rotation import RotationGuard
from tourviews.ingest.rules.throttle import Limiter
from tourviews.ingest.rules.visits import Visits
from tourviews.ingest.rules.withdrawn import Withdrawn
from tourviews.ingest.store.committer import Overloaded, StorageFailed
from tourviews.ingest.store.writer import DropKey
from tourviews.storage.event import Event
from tourviews.storage.outcomes import Outcome

Rule = Callable[[Hit], Outcome | None]


class Sink(Protocol):
    """Where judged beacons are stored, durably: each awaitable resolves once on disk."""

    def add_row(self, row: Event) -> Awaitable[None]: ...

    def add_drop(self, key: DropKey, wait: bool) -> Awaitable[None] | None: ...


class MemoryLedger:
    def __init__(
        self,
        limiter: Limiter,
        deduplicator: Deduplicator,
        rotation: RotationGuard,
        scenes: SceneBound,
        sink: Sink,
        withdrawn: Withdrawn | None = None,
        actions: SceneBound | None = None,
        visits: Visits | None = None,
    ) -> None:
        self.sink = sink
        self.withdrawn = withdrawn or Withdrawn()
        self.visits = visits or Visits()
        # action names are bounded like scene names, each tour's apart from its scenes
        self._actions = actions or SceneBound(scenes.max_scenes, declared=False)
        self._limiter = limiter
        self._deduplicator = deduplicator
        self._rotation = rotation
        self._scenes = scenes
        # after the pipeline's verdict; the throttle and withdrawals come before it
        self.rules: tuple[Rule, ...] = (
            self.bound_scenes,
            self.guard_rotation,
            self.dedup,
            self.within_visit,
        )

    async def settle(self, hit: Hit, verdict: Outcome | None) -> Outcome:
        outcome = self.judge(hit, verdict)
        if outcome in REFUSED:
            self.refuse(outcome, hit.beacon.tour, drop_sender(outcome, hit), hit.at)
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

    def refuse(self, outcome: Outcome, tour: str, sender: bytes, at: datetime) -> None:
        self.sink.add_drop((hour_of(at), tour, sender, outcome), False)

    async def withdraw(self, visitor: str, moment: float) -> None:
        self.withdrawn.add(visitor, moment)

    def judge(self, hit: Hit, verdict: Outcome | None) -> Outcome:
        """The outcome, with the state it changes (limits charged, keys counted)."""
        if (throttled := self.throttle(hit)) is not None:
            return throttled
        if (withdrawn := self.after_withdrawal(hit)) is not None:
            return withdrawn
        if verdict is not None:
            return verdict
        for rule in self.rules:
            if (dropped := rule(hit)) is not None:
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

    def _store(self, outcome: Outcome, hit: Hit) -> Awaitable[None]:
        beacon = hit.beacon
        if outcome is Outcome.COUNTED:
            return self.sink.add_row(hit.as_event())
        assert outcome in SILENT_DROPS
        key = (hour_of(hit.at), beacon.tour, drop_sender(outcome, hit), outcome)
        done = self.sink.add_drop(key, True)
        assert done is not None
        return done

    def _take_back(self, outcome: Outcome, hit: Hit) -> None:
        """A counted hit was not stored (503): its retry must count, not be a duplicate."""
        if outcome is Outcome.COUNTED and hit.beacon.kind in DEDUPLICATED:
            self._deduplicator.forget(key_of(hit), hit.moment)

    def throttle(self, hit: Hit) -> Outcome | None:
        keys = (hit.source, hit.beacon.visitor, hit.beacon.tour)
        hit.retry_after = self._limiter.admit(keys, hit.moment)
        return Outcome.THROTTLED if hit.retry_after > 0.0 else None

    def after_withdrawal(self, hit: Hit) -> Outcome | None:
        """A beacon sent before a withdrawal may arrive after its erasure: it is dropped."""
        return Outcome.WITHDRAWN if self.withdrawn.recent(hit.beacon.visitor, hit.moment) else None

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
        duplicate = self._deduplicator.is_duplicate(key_of(hit), hit.moment)
        return Outcome.DUPLICATE if duplicate else None

    def within_visit(self, hit: Hit) -> Outcome | None:
        beacon = hit.beacon
        if beacon.kind not in WITHIN_VISIT:
            return None
        going_on = self.visits.extend(beacon.tour, beacon.visitor, hit.moment, hit.at.toordinal())
        return None if going_on else Outcome.OUTSIDE_VISIT


def key_of(hit: Hit) -> tuple[str, str | None, str]:
    beacon = hit.beacon
    return dedup_key(beacon.tour, beacon.kind, beacon.scene, beacon.visitor)
