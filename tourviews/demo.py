"""``tourviews demo``: a week of realistic traffic through the real pipeline, in seconds.

The service runs in-process on the data directory with a manual clock that the
simulation moves forward, so no time is slept. Beacons go through the ASGI app
(parsing, privacy, classification, limits, dedup, group commit) exactly as from
a browser, each person behind their own documentation-range address, forwarded by
a trusted proxy.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
from rich.progress import Progress

from ingest.client import parse_networks
from storage.clock import ManualClock
from tourviews.app import TourviewsApp, create_app
from tourviews.settings import Settings

ORG = "demo"
TOUR = "demo"
SCENES = ("entrance", "lobby", "gallery", "rooftop", "cellar")
TICK = timedelta(minutes=10)
TICKS_PER_DAY = 144
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


def beacon(who: Person, event: str = "view", scene: str | None = None) -> dict[str, Any]:
    body = {"tour": TOUR, "visitor": who.visitor, "event": event}
    return body | ({"scene": scene} if scene else {})


def people(rng: random.Random) -> Iterator[Person]:
    """New people, each with a browser and an address of their own."""
    weights, agents = zip(*BROWSERS, strict=True)
    n = 0
    while True:
        n += 1
        address = f"2001:db8:{n:x}::1" if n % 4 == 0 else f"198.51.{n // 250 % 250}.{n % 250 + 1}"
        yield Person(str(uuid.UUID(int=rng.getrandbits(128), version=4)), address,
                     rng.choices(agents, weights)[0])  # fmt: skip


Sent = list[tuple[Person, dict[str, Any]]]


def tick_traffic(
    rng: random.Random, hour: int, day: int, crowd: Iterator[Person], regulars: list[Person],
    flood: bool,
) -> Sent:  # fmt: skip
    """The beacons of one ten-minute tick: people by time of day, bots, two abusers."""
    sent: Sent = []
    busy = 0.3 + (1.2 if 9 <= hour <= 22 else 0.0) + (0.8 if day % 7 in (5, 6) else 0.0)
    arrivals = [next(crowd) for _ in range(rng.randint(0, int(4 * busy)))]
    if regulars and rng.random() < 0.3:
        arrivals.append(rng.choice(regulars))  # someone coming back
    for person in arrivals:
        sent.append((person, beacon(person)))
        for scene in rng.sample(SCENES, rng.randint(1, 4)):
            sent.append((person, beacon(person, "scene", scene)))
        sent.append((person, beacon(person)))  # a reload: a duplicate, not a view
        if len(regulars) < 200 and rng.random() < 0.2:
            regulars.append(person)
    if rng.random() < 0.5:
        bot = Person(str(uuid.uuid4()), f"192.0.2.{rng.randint(1, 254)}", rng.choice(BOTS))
        sent.append((bot, beacon(bot)))
    if day == 1 and 10 <= hour < 14:  # one address cycling through visitor IDs
        for _ in range(30):  # 90 IDs in 30 minutes: past the limit of 50
            rotator = Person(str(uuid.uuid4()), "203.0.113.66", BROWSERS[0][1])
            sent.append((rotator, beacon(rotator)))
    if flood:
        flooder = Person(str(uuid.uuid4()), "203.0.113.99", BROWSERS[0][1])
        sent += [(flooder, beacon(flooder))] * 150  # one address flooding: throttled
    return sent


async def simulate(app: TourviewsApp, clock: ManualClock, days: int, seed: int) -> int:
    rng = random.Random(seed)
    crowd, regulars = people(rng), list[Person]()
    transport = httpx.ASGITransport(app, client=("127.0.0.1", 40000))
    ticks = int(timedelta(days=days) / TICK)
    sent = 0
    async with httpx.AsyncClient(transport=transport, base_url="http://demo") as client:
        with Progress() as progress:
            task = progress.add_task("simulating a week of visits", total=ticks)
            for tick in range(ticks):
                day, hour = tick // TICKS_PER_DAY, clock.now().hour
                flood = tick == ticks - TICKS_PER_DAY // 2  # half a day before the end
                beacons = tick_traffic(rng, hour, day, crowd, regulars, flood)
                await asyncio.gather(*(
                    client.post("/v1/beacon", content=orjson.dumps(body), headers={
                        "Content-Type": "text/plain", "User-Agent": who.agent,
                        "X-Forwarded-For": who.address})
                    for who, body in beacons
                ))  # fmt: skip
                sent += len(beacons)
                clock.advance(TICK)
                progress.advance(task)
    return sent


def run_demo(settings: Settings, days: int = 7, seed: int = 7) -> tuple[str, int]:
    """Register the demo, simulate ``days`` of traffic up to now; (owner token, beacons sent)."""
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    clock = ManualClock(now - timedelta(days=days))
    proxied = dataclasses.replace(settings, trusted_proxies=parse_networks(["127.0.0.1/32"]))
    app = create_app(proxied, clock)
    app.service.registry.put_tour(TOUR, ORG)
    token = app.service.registry.create_token(ORG)

    async def run() -> int:
        try:
            return await simulate(app, clock, days, seed)
        finally:
            await app.service.stop()

    return token, asyncio.run(run())
