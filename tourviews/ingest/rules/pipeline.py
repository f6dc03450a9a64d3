"""The ingest path as a list of steps.

A parsed beacon meets its tour, is stripped of identity (IP hash, source network,
user-agent class), and then passes the steps in order. Each step lets it through or
drops it with one ``Outcome``; what passes them all is counted. The steps:

    known tour      a tour not registered                          -> UNKNOWN_TOUR (404)
    throttle        rate limits per source network, visitor, tour  -> THROTTLED (429)
    withdrawn       a visitor who withdrew consent minutes before   -> WITHDRAWN (204)
    check_origin    a page the tour's origin list does not name    -> ORIGIN (204)
    filter_bots     crawler, script and headless user-agents       -> BOT (204)
    bound_scenes    a scene or action name past the tour's bound   -> SCENE_LIMIT (204)
    guard_rotation  one network cycling through visitor IDs        -> ROTATION (204)
    dedup           a view or scene again within the window        -> DUPLICATE (204)
    within_visit    engagement or an action outside a visit        -> OUTSIDE_VISIT (204)

The pipeline decides what the beacon alone tells (its tour, its page's origin, its
user-agent: the ``checks``); the steps that need state shared by every beacon are
the ``Ledger``'s (``tourviews.ingest.rules.ledger``), which also stores what each beacon became. The
HTTP endpoint only maps the outcome to an answer.

Limits and windows measure time on a monotonic clock (``Hit.moment``), so a step of
the wall clock neither locks a sender out nor reopens a window.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime

from tourviews.ingest.agents.classifier import Agent
from tourviews.ingest.beacon import Beacon
from tourviews.ingest.privacy import IpHasher
from tourviews.ingest.rules.ledger import Hit, Ledger
from tourviews.storage.outcomes import Outcome
from tourviews.storage.registry import Tour

Check = Callable[[Hit], Outcome | None]


class Pipeline:
    def __init__(
        self, tours: Callable[[], Mapping[str, Tour]], hasher: IpHasher, ledger: Ledger
    ) -> None:
        self._tours = tours
        self._hasher = hasher
        self.ledger = ledger
        # applied by the ledger after the limits and the withdrawals (``Ledger.settle``)
        self.checks: tuple[Check, ...] = (self.check_origin, self.filter_bots)

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
        other is on disk when this returns.
        """
        if hit.tour is None:
            self.ledger.refuse(Outcome.UNKNOWN_TOUR, "", hit.ip_hash, hit.at)
            return Outcome.UNKNOWN_TOUR
        verdict = None
        for check in self.checks:
            if (verdict := check(hit)) is not None:
                break
        return await self.ledger.settle(hit, verdict)

    def refuse(self, outcome: Outcome, tour: str, sender: bytes, now: datetime) -> None:
        """Count a beacon answered with an error (not waited for: nothing was accepted)."""
        self.ledger.refuse(outcome, tour, sender, now)

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

    def hashes(self, address: str | None, now: datetime) -> tuple[bytes, bytes]:
        """(stored IP hash, source network) of an address."""
        return self._hasher.hashes(address, now)

    def hash_address(self, address: str | None, now: datetime) -> bytes:
        return self._hasher.hash(address, now)
