"""The in-process ledger: the shared-state rules in this process's memory, stored in DuckDB.

The embedded mode's backend of ``tourviews.ingest.rules.ledger.Ledger``. Its state
lives on the event loop's thread, which makes each rule exact under concurrency without locks; it is
rebuilt from the stored events at start (``tourviews.ingest.rules.restore``). Its rules are
the ``SHARED`` steps of ``tourviews.ingest.rules.steps``, one method each, which ``judge``
applies in the table's order, and the pipeline's verdict at the place of its step.

A counted view begins a visit; a counted scene, engage or action beacon within
30 minutes of the visit's last one continues it (``tourviews.ingest.rules.visits``).

What a beacon became is stored through the ``Sink`` (a counted event as a row, a silent
drop as a counter) and taken back if the store fails, so that its retry counts.
"""

from __future__ import annotations

from collections.abc import Awaitable, Mapping
from datetime import datetime
from typing import Protocol

from tourviews.ingest.rules.dedup import DEDUPLICATED, Deduplicator, dedup_key
from tourviews.ingest.rules.ledger import (
    WITHIN_VISIT,
    Hit,
    Unavailable,
    drop_sender,
    hour_of,
)
from tourviews.ingest.rules.names import SceneBound, source_bounds
from tourviews.ingest.rules.rotation import RotationGuard
from tourviews.ingest.rules.steps import LEDGER, REFUSED_OUTCOMES, SHARED, SILENT_DROPS, Passes
from tourviews.ingest.rules.throttle import Limiter
from tourviews.ingest.rules.visits import Visits
from tourviews.ingest.rules.withdrawn import Withdrawn
from tourviews.ingest.sources import BOUNDED, DIRECT_VIEW, OTHER
from tourviews.ingest.store.committer import Overloaded, StorageFailed
from tourviews.ingest.store.writer import DropKey
from tourviews.storage.event import Event
from tourviews.storage.outcomes import Outcome


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
        sources: Mapping[str, SceneBound] | None = None,
    ) -> None:
        self.sink = sink
        self.withdrawn = withdrawn or Withdrawn()
        self.visits = visits or Visits()
        # action names are bounded like scene names, each tour's apart from its scenes
        self._actions = actions or SceneBound(scenes.max_scenes, declared=False)
        # a view's source and UTM values, each field's per tour like its scene names
        self._sources = sources or source_bounds(scenes.max_scenes)
        self._limiter = limiter
        self._deduplicator = deduplicator
        self._rotation = rotation
        self._scenes = scenes
        # None: a step of the pipeline's, where its verdict applies
        self.steps: tuple[tuple[Passes | None, Outcome], ...] = tuple(
            (getattr(self, step.name) if step.needs is SHARED else None, step.drops)
            for step in LEDGER
        )

    async def settle(self, hit: Hit, verdict: Outcome | None) -> Outcome:
        outcome = self.judge(hit, verdict)
        if outcome in REFUSED_OUTCOMES:
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
        for passes, drops in self.steps:
            if passes is None:
                if verdict is drops:
                    return drops
            elif not passes(hit):
                return drops
        beacon = hit.beacon
        if hit.scene is not None:
            self._scenes.record(beacon.tour, hit.scene, hit.source)
        if beacon.kind == "view":
            self.visits.begin(beacon.tour, beacon.visitor, hit.moment, hit.at.toordinal())
        elif beacon.kind == "scene":
            self.visits.extend(beacon.tour, beacon.visitor, hit.moment, hit.at.toordinal())
        elif beacon.action is not None:
            self._actions.record(beacon.tour, beacon.action, hit.source)
        for field, value in zip(BOUNDED, sourced(hit), strict=True):
            if value is not None and value != OTHER:
                self._sources[field].record(beacon.tour, value, hit.source)
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

    def throttle(self, hit: Hit) -> bool:
        """Whether every limit admits the beacon (then each is charged; else none is)."""
        keys = (hit.source, hit.beacon.visitor, hit.beacon.tour)
        hit.retry_after = self._limiter.admit(keys, hit.moment)
        return hit.retry_after <= 0.0

    def after_withdrawal(self, hit: Hit) -> bool:
        """Whether its visitor has not withdrawn lately: a beacon sent before a withdrawal
        may arrive after its erasure."""
        return not self.withdrawn.recent(hit.beacon.visitor, hit.moment)

    def bound_names(self, hit: Hit) -> bool:
        """Whether the beacon's scene or action name is within the tour's bound; a view's
        scene past it is not kept, and the view goes on."""
        assert hit.tour is not None
        action = hit.beacon.action
        if action is not None and not self._actions.admits(hit.tour, action, hit.source):
            return False
        self._bound_sources(hit)
        if hit.scene is None or self._scenes.admits(hit.tour, hit.scene, hit.source):
            return True
        if hit.beacon.kind == "scene":
            return False
        hit.scene = None  # another event is counted; its scene field is not kept
        return True

    def _bound_sources(self, hit: Hit) -> None:
        """A view's source and UTM values past the tour's bounds are counted as ``OTHER``:
        nothing is refused for them."""
        assert hit.tour is not None
        past = {
            field: OTHER
            for field, value in zip(BOUNDED, sourced(hit), strict=True)
            if value is not None and not self._sources[field].admits(hit.tour, value, hit.source)
        }
        if past and hit.acquisition is not None:
            hit.acquisition = hit.acquisition._replace(**past)

    def guard_rotation(self, hit: Hit) -> bool:
        """Whether the beacon's network is not cycling through visitor IDs."""
        beacon = hit.beacon
        return not self._rotation.is_rotating(hit.source, beacon.tour, beacon.visitor, hit.moment)

    def dedup(self, hit: Hit) -> bool:
        """Whether the beacon is not a view or scene again within the window."""
        if hit.beacon.kind not in DEDUPLICATED:
            return True
        return not self._deduplicator.is_duplicate(key_of(hit), hit.moment)

    def within_visit(self, hit: Hit) -> bool:
        """Whether an engage or action beacon continues a visit going on (others pass)."""
        beacon = hit.beacon
        if beacon.kind not in WITHIN_VISIT:
            return True
        return self.visits.extend(beacon.tour, beacon.visitor, hit.moment, hit.at.toordinal())


NOT_SOURCED = (None,) * len(BOUNDED)


def sourced(hit: Hit) -> tuple[str | None, ...]:
    """The values of a view's ``BOUNDED`` fields, in their order (None: not given)."""
    came = hit.acquisition
    if came is None or came is DIRECT_VIEW:
        return NOT_SOURCED
    return tuple(getattr(came, field) for field in BOUNDED)


def key_of(hit: Hit) -> tuple[str, str | None, str]:
    beacon = hit.beacon
    return dedup_key(beacon.tour, beacon.kind, beacon.scene, beacon.visitor)
