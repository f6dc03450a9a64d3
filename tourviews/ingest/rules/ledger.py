"""The port behind which a beacon's fate is decided against shared state, and stored.

The rules that need state beyond one beacon (the ``SHARED`` steps of
``tourviews.ingest.rules.steps``: rate limits, recent withdrawals, scene and action
bounds, the rotation guard, dedup windows, visits) sit behind one port, a ``Ledger``,
rather than one port each: the shared backend applies them all and stores
the outcome in one atomic step per beacon (on Redis, one script call), so that two
ingest processes cannot both count a duplicate, and a beacon costs one round trip.
``tourviews.ingest.rules.memory_ledger`` is the in-process backend.

The rules a beacon alone decides (its tour is registered, its page's origin, its
user-agent) are the pipeline's (``tourviews.ingest.rules.pipeline``); it hands its verdict in.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from tourviews.ingest.agents.classifier import Agent
from tourviews.ingest.beacon import Beacon
from tourviews.ingest.sources import Acquisition
from tourviews.storage.event import Event
from tourviews.storage.outcomes import Outcome
from tourviews.storage.registry import Tour

UNKNOWN = Acquisition(None, None, None, None, None)  # what events other than views keep

# Engagement and actions, which are not deduplicated (``DEDUPLICATED``), count only
# inside a visit.
WITHIN_VISIT = frozenset(("engage", "action"))


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
    country: str | None = None  # of the sender's address (--geoip); stored
    # a view's: where it came from (its values past the tour's bounds are ``OTHER``)
    acquisition: Acquisition | None = None
    retry_after: float = 0.0

    def as_event(self) -> Event:
        """The row this hit is stored as once counted (by either ledger)."""
        beacon, agent = self.beacon, self.agent
        came = self.acquisition or UNKNOWN
        return Event(
            ts=self.at.replace(tzinfo=None), tour=beacon.tour, kind=beacon.kind, scene=self.scene,
            visitor=beacon.visitor, ip_hash=self.ip_hash, device=agent.device,
            browser=agent.browser, os=agent.os, seconds=beacon.seconds, action=beacon.action,
            country=self.country,
            source=came.source, channel=came.channel, utm_source=came.utm_source,
            utm_medium=came.utm_medium, utm_campaign=came.utm_campaign,
        )  # fmt: skip


class Ledger(Protocol):
    async def settle(self, hit: Hit, verdict: Outcome | None) -> Outcome:
        """Judge ``hit`` (of a registered tour) and store what it became.

        ``verdict``: the pipeline's own drop, if any (the first of its ``VERDICT``
        steps'); it applies at that step's place in the table, after the rate limits
        and the withdrawals, so that a bot is throttled like anyone. Raises
        ``Unavailable`` if the outcome cannot be stored; then nothing of it counts.
        A refused beacon is counted without waiting; any other is on disk on return.
        """
        ...

    def refuse(self, outcome: Outcome, tour: str, sender: bytes, at: datetime) -> None:
        """Count a beacon answered with an error (not waited for: nothing was accepted)."""
        ...

    async def withdraw(self, visitor: str, moment: float) -> None:
        """The visitor withdrew consent: their beacons still in flight are dropped."""
        ...


def drop_sender(outcome: Outcome, hit: Hit) -> bytes:
    """Who a drop counter names: a source stopped for what its network did is reported
    as that network; nothing ties a withdrawn visitor's late beacon to an address."""
    if outcome is Outcome.ROTATION or outcome is Outcome.THROTTLED:
        return hit.source
    if outcome is Outcome.WITHDRAWN:
        return b""
    return hit.ip_hash


def hour_of(at: datetime) -> datetime:
    """The UTC hour a drop is counted under."""
    return at.replace(minute=0, second=0, microsecond=0, tzinfo=None)
