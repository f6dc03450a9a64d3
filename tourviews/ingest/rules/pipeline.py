"""The ingest path: a beacon judged by the steps of ``tourviews.ingest.rules.steps``.

A parsed beacon meets its tour, is stripped of identity (IP hash, source network,
user-agent class, and with ``--geoip`` the country), and then passes the steps in the
table's order. Each step lets it
through or drops it with one ``Outcome``; what passes them all is counted.

The pipeline decides what the beacon alone tells (its tour, its page's origin, its
user-agent: the table's ``BEACON`` steps); the steps that need state shared by every
beacon are the ``Ledger``'s (``tourviews.ingest.rules.ledger``), which also stores what
each beacon became. The HTTP endpoint only maps the outcome to an answer.

Limits and windows measure time on a monotonic clock (``Hit.moment``), so a step of
the wall clock neither locks a sender out nor reopens a window.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime

from tourviews.ingest.agents.classifier import Agent
from tourviews.ingest.beacon import Beacon
from tourviews.ingest.countries import Countries
from tourviews.ingest.privacy import IpHasher
from tourviews.ingest.rules.ledger import Hit, Ledger
from tourviews.ingest.rules.steps import AHEAD, VERDICT, bind
from tourviews.ingest.sources import acquisition_of
from tourviews.storage.outcomes import Outcome
from tourviews.storage.registry import Tour


class Pipeline:
    def __init__(
        self,
        tours: Callable[[], Mapping[str, Tour]],
        hasher: IpHasher,
        ledger: Ledger,
        countries: Countries | None = None,
    ) -> None:
        self._tours = tours
        self._hasher = hasher
        self.ledger = ledger
        self._countries = countries
        self._ahead = bind(self, AHEAD)
        # their first drop is the verdict, which the ledger applies at its place
        self.checks = bind(self, VERDICT)

    def identify(
        self,
        beacon: Beacon,
        address: str | None,
        agent: Agent,
        now: datetime,
        moment: float,
        origin: str | None = None,
    ) -> Hit:
        """Keep only the hashes, the user-agent class and the country of the sender."""
        ip_hash, source = self._hasher.hashes(address, now)
        country = None if self._countries is None else self._countries.of(address)
        tour = self._tours().get(beacon.tour)
        hit = Hit(beacon, tour, now, moment, ip_hash, source, agent, origin, beacon.scene, country)
        if beacon.kind == "view" and tour is not None:  # only a view keeps where it came from
            hit.acquisition = acquisition_of(
                beacon.referrer, beacon.embedded, beacon.utm, tour.origins, origin
            )
        return hit

    async def settle(self, hit: Hit) -> Outcome:
        """Judge ``hit`` and store what it became; raises ``Unavailable`` if it cannot be.

        A refused beacon (unknown tour, throttled) is counted without waiting; any
        other is on disk when this returns.
        """
        for passes, refused in self._ahead:
            if not passes(hit):  # counted under no tour: an unregistered name is not kept
                self.ledger.refuse(refused, "", hit.ip_hash, hit.at)
                return refused
        verdict: Outcome | None = None
        for passes, drops in self.checks:
            if not passes(hit):
                verdict = drops
                break
        return await self.ledger.settle(hit, verdict)

    def refuse(self, outcome: Outcome, tour: str, sender: bytes, now: datetime) -> None:
        """Count a beacon answered with an error (not waited for: nothing was accepted)."""
        self.ledger.refuse(outcome, tour, sender, now)

    def known_tour(self, hit: Hit) -> bool:
        """Whether the beacon's tour is registered."""
        return hit.tour is not None

    def check_origin(self, hit: Hit) -> bool:
        """Whether the beacon's page may send the tour beacons."""
        # A beacon without an Origin (a script) is judged by the other steps: only a
        # named, foreign page is refused.
        # "null" is what a browser sends when it will not say (a no-referrer page, an
        # https page beaconing to http): no better evidence than no header at all.
        assert hit.tour is not None
        return hit.origin is None or hit.origin == "null" or hit.tour.allows(hit.origin)

    def filter_bots(self, hit: Hit) -> bool:
        """Whether a person's browser sent the beacon, as far as its user-agent tells."""
        return hit.agent.device != "bot"

    def hashes(self, address: str | None, now: datetime) -> tuple[bytes, bytes]:
        """(stored IP hash, source network) of an address."""
        return self._hasher.hashes(address, now)

    def hash_address(self, address: str | None, now: datetime) -> bytes:
        return self._hasher.hash(address, now)
