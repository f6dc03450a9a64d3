"""``tourviews demo``: days of realistic traffic through the real pipeline, in seconds.

The service runs in-process on the data directory with a manual clock that the
simulation moves forward, so no time is slept. Beacons go through the ASGI app
(parsing, privacy, classification, limits, dedup, visits, group commit) exactly as
from a browser, each person behind their own documentation-range address, forwarded
by a trusted proxy.

A person's visit is what ``beacon.js`` and ``engage.js`` send for it: the view (with
where it came from: a portal's iframe, search, a campaign's link), the first scene,
then on each scene change an ``engage`` with the visible seconds spent in the scene
left and the next ``scene``, a few actions in the scene they are in, and a last
``engage`` when the page is hidden.
The clock moves in steps of ``STEP``: the beacons of one step are sent together, and a
person's beacons that follow each other fall in different steps, so the stored order
is the order they were sent in.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import random
import uuid
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import orjson
from rich.progress import Progress

from tourviews.app import TourviewsApp, create_app
from tourviews.ingest.http.address import parse_networks
from tourviews.settings import Settings
from tourviews.storage.clock import ManualClock

ORG = "demo"
TOUR = "demo"
TIMEZONE = "Asia/Almaty"  # the operator's: the demo's days and busy hours are local
STEP = timedelta(seconds=30)
TICK = timedelta(minutes=10)  # arrivals are drawn per tick
STEPS_PER_TICK = TICK // STEP
TICKS_PER_DAY = timedelta(days=1) // TICK

# A flat for sale: where a visit starts (most from the tour's start, some from a link
# to one room), and where people go next from each room.
ENTRIES = ((70, "hallway"), (15, "living-room"), (10, "terrace"), (5, "kitchen"))
NEXT = {
    "hallway": ((6, "living-room"), (2, "kitchen"), (1, "bedroom")),
    "living-room": ((5, "kitchen"), (3, "terrace"), (2, "bedroom"), (1, "hallway")),
    "kitchen": ((3, "bedroom"), (2, "living-room"), (2, "terrace")),
    "bedroom": ((2, "terrace"), (1, "kitchen"), (1, "living-room")),
    "terrace": ((2, "living-room"), (1, "bedroom")),
}
SCENES = tuple(NEXT)
BOUNCE = 0.3  # leaves after the first scene
LEAVE = 0.25  # leaves after any later scene
ACTIONS = (("floor-plan", 0.12), ("lead-form", 0.05), ("book-viewing", 0.03))  # per visit
GOALS = ("action:lead-form", "action:book-viewing", "scene:terrace")
# Where a visit comes from, as beacon.js reports it: most tours are seen in an iframe on
# a property portal or an agency's listing (the referrer is then the embedding page),
# some through search or a link, some from a campaign's tagged link.
ACQUISITION: tuple[tuple[int, dict[str, Any]], ...] = (
    (30, {"referrer": "https://krisha.kz/a/show/687351204", "embedded": True}),
    (14, {"referrer": "https://www.etagi.kz/realty/almaty/flat/58812", "embedded": True}),
    (16, {}),  # typed or bookmarked: direct
    (14, {"referrer": "https://www.google.com/"}),
    (6, {"referrer": "https://yandex.kz/"}),
    (8, {"referrer": "https://l.instagram.com/", "utm_source": "instagram",
         "utm_medium": "social", "utm_campaign": "winter-sale"}),
    (5, {"referrer": "https://web.whatsapp.com/"}),
    (7, {"utm_source": "newsletter", "utm_medium": "email", "utm_campaign": "winter-sale"}),
)  # fmt: skip
_ACQUIRED_WEIGHTS, _ACQUIRED = zip(*ACQUISITION, strict=True)

BROWSERS = (  # real user-agents of the browsers people use, by rough share
    (30, "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
         "Chrome/131.0.0.0 Safari/537.36"),
    (20, "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 "
         "(KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1"),
    (18, "Mozilla/5.0 (Linux; Android 14; SM-S921B) AppleWebKit/537.36 (KHTML, like Gecko) "
         "Chrome/131.0.0.0 Mobile Safari/537.36"),
    (10, "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 "
         "(KHTML, like Gecko) Version/18.1 Safari/605.1.15"),
    (8, "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0"),
    (7, "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0"),
    (7, "Mozilla/5.0 (iPad; CPU OS 18_1 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1"),
)  # fmt: skip
BOTS = (
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.2; "
    "+https://openai.com/gptbot)",
    "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
    "python-requests/2.32.3",
)


@dataclass
class Person:
    visitor: str
    address: str
    agent: str


def beacon(who: Person, event: str = "view", **fields: Any) -> dict[str, Any]:
    return {"tour": TOUR, "visitor": who.visitor, "event": event, **fields}


def people(rng: random.Random) -> Iterator[Person]:
    """New people, each with a browser and an address of their own."""
    weights, agents = zip(*BROWSERS, strict=True)
    n = 0
    while True:
        n += 1
        address = f"2001:db8:{n:x}::1" if n % 4 == 0 else f"198.51.{n // 250 % 250}.{n % 250 + 1}"
        yield Person(str(uuid.UUID(int=rng.getrandbits(128), version=4)), address,
                     rng.choices(agents, weights)[0])  # fmt: skip


def pick(rng: random.Random, choices: tuple[tuple[int, str], ...]) -> str:
    weights, names = zip(*choices, strict=True)
    return str(rng.choices(names, weights)[0])


Beacons = list[tuple[Person, dict[str, Any]]]


@dataclass
class Simulation:
    """The people of the demo and the beacons planned for each step of the clock."""

    rng: random.Random
    crowd: Iterator[Person]
    regulars: list[Person] = dataclasses.field(default_factory=list)
    plan: defaultdict[int, Beacons] = dataclasses.field(default_factory=lambda: defaultdict(list))

    def tick(self, step: int, local: datetime, day: int, flood: bool, last: bool) -> None:
        """Plan the ten minutes from ``step`` (``local`` time): people, bots, two abusers."""
        rng, plan, hour = self.rng, self.plan, local.hour
        busy = 0.3 + (1.2 if 9 <= hour <= 22 else 0.0) + (0.8 if local.weekday() >= 5 else 0.0)
        busy *= 1 + 0.03 * day  # a listing that is catching on
        crowd = rng.randint(0, int(4 * busy))
        arrivals = [next(self.crowd) for _ in range(max(crowd, 2) if last else crowd)]
        if self.regulars and rng.random() < 0.3:
            arrivals.append(rng.choice(self.regulars))  # someone coming back
        for person in arrivals:
            # the last tick's people come in its last minutes: on the tour as the demo ends
            late = STEPS_PER_TICK * 3 // 4 if last else 0
            self.visit(person, step + late + rng.randrange(STEPS_PER_TICK - late))
            if len(self.regulars) < 200 and rng.random() < 0.2:
                self.regulars.append(person)
        if rng.random() < 0.5:
            bot = Person(str(uuid.uuid4()), f"192.0.2.{rng.randint(1, 254)}", rng.choice(BOTS))
            plan[step].append((bot, beacon(bot)))
        if day == 1 and 10 <= hour < 14:  # one address cycling through visitor IDs
            for _ in range(30):  # 90 IDs in 30 minutes: past the limit of 50
                rotator = Person(str(uuid.uuid4()), "203.0.113.66", BROWSERS[0][1])
                plan[step].append((rotator, beacon(rotator)))
        if flood:  # one address flooding: throttled
            flooder = Person(str(uuid.uuid4()), "203.0.113.99", BROWSERS[0][1])
            plan[step] += [(flooder, beacon(flooder))] * 150

    def visit(self, who: Person, step: int) -> None:
        """One person's visit from ``step`` on: the beacons the scripts send for it."""
        rng, plan = self.rng, self.plan
        scene = pick(rng, ENTRIES)
        came_from = rng.choices(_ACQUIRED, _ACQUIRED_WEIGHTS)[0]
        plan[step] += [(who, beacon(who, **came_from)), (who, beacon(who, "scene", scene=scene))]
        seen = {scene}
        actions = [name for name, chance in ACTIONS if rng.random() < chance]
        while True:
            # engage.js sends at least every 5 minutes: a longer stay would be two beacons
            dwell = min(300, max(3, round(rng.lognormvariate(math.log(35), 0.8))))
            if actions and rng.random() < 0.5:
                action = beacon(who, "action", scene=scene, name=actions.pop())
                plan[step + 1].append((who, action))
            step += max(1, math.ceil(dwell / STEP.total_seconds()))
            plan[step].append((who, beacon(who, "engage", scene=scene, seconds=dwell)))
            ahead = tuple((w, s) for w, s in NEXT[scene] if s not in seen)
            if rng.random() < (BOUNCE if len(seen) == 1 else LEAVE) or not ahead:
                break
            scene = pick(rng, ahead)
            seen.add(scene)
            plan[step].append((who, beacon(who, "scene", scene=scene)))
        if rng.random() < 0.1:  # a reload: a duplicate view, not counted
            plan[step + 1].append((who, beacon(who)))
        if rng.random() < 0.03:  # back to a tab left open for an hour: outside any visit
            plan[step + 120].append((who, beacon(who, "engage", scene=scene, seconds=20)))


async def simulate(app: TourviewsApp, clock: ManualClock, days: int, seed: int) -> int:
    """Send ``days`` of traffic from the clock's time on; the beacons sent."""
    rng = random.Random(seed)
    simulation = Simulation(rng, people(rng))
    zone, start = ZoneInfo(TIMEZONE), clock.now()
    transport = httpx.ASGITransport(app, client=("127.0.0.1", 40000))
    ticks = days * TICKS_PER_DAY
    sent = 0
    async with httpx.AsyncClient(transport=transport, base_url="http://demo") as client:
        with Progress() as progress:
            task = progress.add_task(f"simulating {days} days of visits", total=ticks)
            for tick in range(ticks):
                first = tick * STEPS_PER_TICK
                simulation.tick(
                    first, (start + tick * TICK).astimezone(zone), tick // TICKS_PER_DAY,
                    flood=tick == ticks - TICKS_PER_DAY // 2,  # half a day before the end
                    last=tick == ticks - 1,
                )  # fmt: skip
                for step in range(first, first + STEPS_PER_TICK):
                    beacons = simulation.plan.pop(step, [])
                    if not beacons:
                        continue
                    clock.set(start + step * STEP)
                    await asyncio.gather(*(
                        client.post("/v1/beacon", content=orjson.dumps(body), headers={
                            "Content-Type": "text/plain", "User-Agent": who.agent,
                            "X-Forwarded-For": who.address})
                        for who, body in beacons
                    ))  # fmt: skip
                    sent += len(beacons)
                progress.advance(task)
    return sent  # what is planned past the end would be sent after now: it is not


def run_demo(settings: Settings, days: int = 7, seed: int = 7) -> tuple[str, int]:
    """Register the demo, simulate ``days`` of traffic up to now; (owner token, beacons sent)."""
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    clock = ManualClock(now - timedelta(days=days))
    proxied = dataclasses.replace(settings, trusted_proxies=parse_networks(["127.0.0.1/32"]))
    app = create_app(proxied, clock)
    app.service.registry.put_tour(TOUR, ORG, timezone=TIMEZONE, goals=GOALS)
    token = app.service.registry.create_token(ORG)

    async def run() -> int:
        try:
            return await simulate(app, clock, days, seed)
        finally:
            await app.service.stop()

    return token, asyncio.run(run())
