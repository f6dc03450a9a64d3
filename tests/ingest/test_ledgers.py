"""The rules behind the Ledger port, run against both backends: one suite, same answers.

``memory``: the in-process ledger, storing into a real DuckDB file through the
committer. ``redis``: two shared ledgers (as two ingest processes would hold), each
with its own connection to one real redis-server, storing into its stream, which the
primary's drain commits to a real DuckDB file. Both are read back from the file.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
import uuid
from collections import Counter
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from tests.redis_server import redis_server
from tourviews.ingest.agents.classifier import Agent
from tourviews.ingest.beacon import Beacon
from tourviews.ingest.privacy import IpHasher
from tourviews.ingest.rules.dedup import Deduplicator
from tourviews.ingest.rules.ledger import Hit, Ledger, Unavailable
from tourviews.ingest.rules.memory_ledger import MemoryLedger
from tourviews.ingest.rules.names import SceneBound
from tourviews.ingest.rules.pipeline import Pipeline
from tourviews.ingest.rules.redis_ledger import CLOCK, STREAM, RedisLedger, connect
from tourviews.ingest.rules.rotation import RotationGuard
from tourviews.ingest.rules.throttle import Limiter
from tourviews.ingest.store.committer import Committer
from tourviews.ingest.store.drain import StreamDrain
from tourviews.ingest.store.writer import EventWriter
from tourviews.modes import limits, shared_rules
from tourviews.settings import Settings
from tourviews.storage.database import Database, open_database
from tourviews.storage.event import decode
from tourviews.storage.outcomes import Outcome
from tourviews.storage.registry import Tour

DESKTOP = Agent("Chrome", "Windows", "desktop")
BOT = Agent("Other", "Other", "bot")
AT = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
TOURS = {
    "t1": Tour("t1", "acme", ()),
    "declared": Tour("declared", "acme", (), frozenset(("lobby", "kitchen"))),
    "locked": Tour("locked", "acme", ("https://tours.example.com",)),
}


@dataclass
class Backend:
    """Ledgers that share their state, and what they stored."""

    ledgers: list[Ledger]
    stored: Callable[[], Coroutine[Any, Any, tuple[Counter[str], Counter[str]]]]
    # the ledger's clock reads this many seconds earlier than at its last beacon
    step_back: Callable[[float], Coroutine[Any, Any, None]]
    db: Database  # where they stored it, once ``stored`` has returned

    def pipeline(self, node: int = 0) -> Pipeline:
        return Pipeline(lambda: TOURS, _HASHER, self.ledgers[node % len(self.ledgers)])


class _Salts:
    def salt(self, day: date) -> bytes:
        return b"s" * 32


_HASHER = IpHasher(_Salts(), 32, 64, 32, 64)
KEY = b"k" * 32  # the shared ledgers' visitor key


def _memory(settings: Settings, tmp_path: Path) -> Iterator[Backend]:
    db = open_database(tmp_path / "data")
    committer = Committer(EventWriter(db).write)
    ledger = MemoryLedger(
        Limiter(*limits(settings)),
        Deduplicator(settings.dedup_window_seconds),
        RotationGuard(settings.dedup_window_seconds, settings.rotation_limit),
        SceneBound(settings.max_scenes),
        committer,
    )

    async def stored() -> tuple[Counter[str], Counter[str]]:
        await committer.settled()
        return _stored(db)

    async def step_back(seconds: float) -> None:
        """The process's monotonic clock, which the memory ledger reads, never goes back."""

    yield Backend([ledger], stored, step_back, db)
    db.close()


def _redis(settings: Settings, tmp_path: Path) -> Iterator[Backend]:
    rules = shared_rules(settings)
    with redis_server(tmp_path / "redis") as url:
        clients: list[Redis] = [connect(url)]  # the primary's

        def ledger() -> RedisLedger:
            clients.append(connect(url))
            return RedisLedger(clients[-1], rules, b"k" * 32)

        db = open_database(tmp_path / "data")
        drain = StreamDrain(clients[0], db, EventWriter(db))

        async def stored() -> tuple[Counter[str], Counter[str]]:
            """What the primary's drain committed of the stream."""
            while await drain.drain_once(block_ms=50):
                pass
            return _stored(db)

        async def step_back(seconds: float) -> None:
            # Redis' TIME cannot be stepped here: libfaketime cannot load into Debian's
            # redis-server (built with jemalloc: libfaketime#130). The script reads
            # TIME plus the offset it keeps: lowering the offset makes its next reading
            # ``seconds`` earlier than its last, as a step of the clock would.
            await clients[0].hincrbyfloat(CLOCK, "offset", -seconds)

        yield Backend([ledger(), ledger()], stored, step_back, db)
        db.close()


WINDOW = 1.0  # seconds: the dedup and rotation window of ``quick``, which tests wait out


def _stored(db: Database) -> tuple[Counter[str], Counter[str]]:
    """The events stored by kind, and the beacons not counted by reason."""
    with db.using() as cursor:
        rows = cursor.execute("SELECT kind, count(*) FROM events GROUP BY 1").fetchall()
        drops = cursor.execute("SELECT reason, sum(beacons) FROM drop_log GROUP BY 1")
        return Counter(dict(rows)), Counter({k: int(v) for k, v in drops.fetchall()})


def _either(request: pytest.FixtureRequest, tmp_path: Path, **settings: Any) -> Iterator[Backend]:
    """The backend the fixture's param names, its settings but ``settings`` the defaults."""
    make = _memory if request.param == "memory" else _redis
    yield from make(Settings(data_dir=tmp_path / "data", **settings), tmp_path)


@pytest.fixture(params=["memory", "redis"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    yield from _either(request, tmp_path)


@pytest.fixture(params=["memory", "redis"])
def quick(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    """A backend whose windows last a second."""
    yield from _either(request, tmp_path, dedup_window_seconds=WINDOW)


def run(scenario: Coroutine[Any, Any, None]) -> None:
    asyncio.run(scenario)


def hit(
    pipeline: Pipeline,
    tour: str = "t1",
    visitor: str | None = None,
    address: str = "203.0.113.7",
    agent: Agent = DESKTOP,
    origin: str | None = None,
    kind: str = "view",
    scene: str | None = None,
    **fields: Any,
) -> Hit:
    beacon = Beacon(tour, visitor or str(uuid.uuid4()), kind, scene, **fields)
    return pipeline.identify(beacon, address, agent, AT, time.monotonic(), origin)


async def settle_all(pipelines: list[Pipeline], hits: list[Hit]) -> list[Outcome]:
    """Settle every hit at once, alternating between the pipelines (the ingest nodes)."""
    jobs = [pipelines[i % len(pipelines)].settle(h) for i, h in enumerate(hits)]
    return list(await asyncio.gather(*jobs))


def test_repeats_of_one_visitor_across_nodes_count_once(backend: Backend) -> None:
    async def scenario() -> None:
        nodes = [backend.pipeline(0), backend.pipeline(1)]
        same = str(uuid.uuid4())
        outcomes = await settle_all(nodes, [hit(nodes[i % 2], visitor=same) for i in range(10)])
        assert Counter(outcomes) == {Outcome.COUNTED: 1, Outcome.DUPLICATE: 9}
        rows, drops = await backend.stored()
        assert rows == {"view": 1}
        assert drops == {"duplicate": 9}

    run(scenario())


def test_two_hundred_ids_from_one_address_count_at_most_fifty(backend: Backend) -> None:
    async def scenario() -> None:
        nodes = [backend.pipeline(0), backend.pipeline(1)]
        outcomes = await settle_all(nodes, [hit(nodes[i % 2]) for i in range(200)])
        # the address's burst lets 100 through, and the rotation guard 50 of those
        assert Counter(outcomes)[Outcome.COUNTED] == 50
        assert Counter(outcomes)[Outcome.ROTATION] + Counter(outcomes)[Outcome.THROTTLED] == 150
        rows, _ = await backend.stored()
        assert rows == {"view": 50}

    run(scenario())


def test_one_address_burst_holds_across_nodes(backend: Backend) -> None:
    async def scenario() -> None:
        nodes = [backend.pipeline(0), backend.pipeline(1)]
        tours = ["t1", "declared"]  # the address's limit spans tours
        hits = [hit(nodes[i % 2], tour=tours[i % 2]) for i in range(101)]
        outcomes = await settle_all(nodes, hits)
        assert Counter(outcomes)[Outcome.THROTTLED] == 1  # the hundred and first to arrive
        throttled = hits[outcomes.index(Outcome.THROTTLED)]
        assert 0 < throttled.retry_after <= 0.1  # 600 a minute: the next place in 0.1 s
        _, drops = await backend.stored()
        assert drops["throttled"] == 1

    run(scenario())


def test_a_bot_is_throttled_like_anyone_then_dropped(backend: Backend) -> None:
    async def scenario() -> None:
        node = backend.pipeline()
        outcomes = await settle_all([node], [hit(node, agent=BOT) for _ in range(101)])
        assert Counter(outcomes) == {Outcome.BOT: 100, Outcome.THROTTLED: 1}
        rows, drops = await backend.stored()
        assert rows == {}
        assert drops == {"bot": 100, "throttled": 1}

    run(scenario())


def test_a_foreign_page_and_an_unknown_tour_are_not_counted(backend: Backend) -> None:
    async def scenario() -> None:
        node = backend.pipeline()
        outcomes = await settle_all([node], [
            hit(node, tour="locked", origin="https://evil.example"),
            hit(node, tour="locked", origin="https://tours.example.com"),
            hit(node, tour="nosuch"),
        ])  # fmt: skip
        assert outcomes == [Outcome.ORIGIN, Outcome.COUNTED, Outcome.UNKNOWN_TOUR]
        await asyncio.sleep(0.05)  # the unknown tour's drop is not waited for
        rows, drops = await backend.stored()
        assert rows == {"view": 1}
        assert drops == {"origin": 1, "unknown_tour": 1}

    run(scenario())


def test_scenes_a_tour_does_not_declare_are_not_counted(backend: Backend) -> None:
    async def scenario() -> None:
        node = backend.pipeline()
        who = str(uuid.uuid4())
        outcomes = [
            await node.settle(hit(node, tour="declared", visitor=who, **kw))
            for kw in ({}, {"kind": "scene", "scene": "lobby"}, {"kind": "scene", "scene": "attic"})
        ]
        assert outcomes == [Outcome.COUNTED, Outcome.COUNTED, Outcome.SCENE_LIMIT]

    run(scenario())


def test_engagement_counts_only_inside_a_visit(backend: Backend) -> None:
    async def scenario() -> None:
        node = backend.pipeline()
        who, stranger = str(uuid.uuid4()), str(uuid.uuid4())
        outcomes = [await node.settle(h) for h in (
            hit(node, visitor=stranger, kind="engage", seconds=30),
            hit(node, visitor=who),
            hit(node, visitor=who, kind="scene", scene="lobby"),
            hit(node, visitor=who, kind="engage", seconds=30),
            hit(node, visitor=who, kind="action", action="lead-form"),
        )]  # fmt: skip
        assert outcomes == [Outcome.OUTSIDE_VISIT, *[Outcome.COUNTED] * 4]
        rows, _ = await backend.stored()
        assert rows == {"view": 1, "scene": 1, "engage": 1, "action": 1}

    run(scenario())


def test_a_withdrawn_visitor_in_flight_is_dropped_on_every_node(backend: Backend) -> None:
    async def scenario() -> None:
        nodes = [backend.pipeline(0), backend.pipeline(1)]
        who = str(uuid.uuid4())
        await nodes[0].ledger.withdraw(who, time.monotonic())
        outcome = await nodes[1].settle(hit(nodes[1], visitor=who))
        assert outcome is Outcome.WITHDRAWN
        rows, drops = await backend.stored()
        assert rows == {}
        assert drops == {"withdrawn": 1}

    run(scenario())


def test_one_network_brings_at_most_fifty_new_scene_names(backend: Backend) -> None:
    async def scenario() -> None:
        node = backend.pipeline()
        outcomes = []
        for i in range(51):
            who = str(uuid.uuid4())
            await node.settle(hit(node, visitor=who, address=f"198.51.100.{i}"))
            outcomes.append(
                await node.settle(
                    hit(node, visitor=who, address="203.0.113.9", kind="scene", scene=f"s{i}")
                )
            )
        assert Counter(outcomes) == {Outcome.COUNTED: 50, Outcome.SCENE_LIMIT: 1}

    run(scenario())


@pytest.fixture(params=["memory", "redis"])
def narrow(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    """A backend whose tours count 3 names of each bounded dimension."""
    yield from _either(request, tmp_path, max_scenes=3)


def test_sources_past_a_tours_bound_are_counted_as_other(narrow: Backend) -> None:
    async def scenario() -> None:
        nodes = [narrow.pipeline(0), narrow.pipeline(1)]
        sent = ["a.example", "b.example", "c.example", "d.example", "a.example", "e.example"]
        for i, host in enumerate(sent):
            came = {"referrer": host, "utm": (f"s{i % 4}", None, f"c{i}")}
            view = hit(nodes[i % 2], address=f"198.51.100.{i}", **came)
            assert await nodes[i % 2].settle(view) is Outcome.COUNTED  # nothing is refused
        other = hit(nodes[0], tour="declared", referrer="z.example")  # each tour its own
        assert await nodes[0].settle(other) is Outcome.COUNTED
        rows, _ = await narrow.stored()
        assert rows == {"view": 7}
        stored = (
            narrow.db.cursor()
            .execute(
                "SELECT tour, source, channel, utm_source, utm_campaign FROM events ORDER BY ts, source"
            )
            .fetchall()
        )
        assert sorted(stored) == sorted([
            ("t1", "a.example", "campaign", "s0", "c0"),
            ("t1", "b.example", "campaign", "s1", "c1"),
            ("t1", "c.example", "campaign", "s2", "c2"),
            ("t1", "(other)", "campaign", "(other)", "(other)"),
            ("t1", "a.example", "campaign", "s0", "(other)"),  # counted before: its own name
            ("t1", "(other)", "campaign", "s1", "(other)"),
            ("declared", "z.example", "referral", None, None),
        ])  # fmt: skip

    run(scenario())


@pytest.fixture(params=["memory", "redis"])
def lenient(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    """A backend whose rotation guard lets one network bring 1,000 visitors."""
    yield from _either(request, tmp_path, rotation_limit=1_000)


def test_one_network_brings_at_most_fifty_new_sources(lenient: Backend) -> None:
    async def scenario() -> None:
        node = lenient.pipeline()
        for i in range(60):
            view = hit(node, address="203.0.113.9", referrer=f"site{i}.example")
            assert await node.settle(view) is Outcome.COUNTED
        late = hit(node, address="203.0.113.10", referrer="late.example")
        assert await node.settle(late) is Outcome.COUNTED
        await lenient.stored()
        found = lenient.db.cursor().execute(
            "SELECT count(*) FILTER (source = '(other)'), count(DISTINCT source) FILTER "
            "(source LIKE 'site%'), list(source) FILTER (source = 'late.example') FROM events"
        )
        assert found.fetchall() == [(10, 50, ["late.example"])]

    run(scenario())


def test_a_view_counts_again_once_its_window_has_passed(quick: Backend) -> None:
    async def scenario() -> None:
        node = quick.pipeline()
        who = str(uuid.uuid4())
        assert await node.settle(hit(node, visitor=who)) is Outcome.COUNTED
        assert await node.settle(hit(node, visitor=who)) is Outcome.DUPLICATE
        await asyncio.sleep(WINDOW)
        assert await node.settle(hit(node, visitor=who)) is Outcome.COUNTED

    run(scenario())


def test_a_clock_stepped_back_neither_locks_out_nor_loses_views(quick: Backend) -> None:
    async def scenario() -> None:
        node = quick.pipeline()
        who, address = str(uuid.uuid4()), "192.0.2.1"
        assert await node.settle(hit(node, visitor=who, address=address)) is Outcome.COUNTED
        await quick.step_back(3600)  # the clock now reads an hour earlier
        outcomes = [await node.settle(hit(node, address=address)) for _ in range(49)]
        assert outcomes == [Outcome.COUNTED] * 49  # within the address's burst: no lockout
        assert await node.settle(hit(node, visitor=who, address=address)) is Outcome.DUPLICATE
        await asyncio.sleep(WINDOW)  # the window passes by the time that passed
        assert await node.settle(hit(node, visitor=who, address=address)) is Outcome.COUNTED

    run(scenario())


def test_addresses_of_one_ipv6_network_share_its_limits(backend: Backend) -> None:
    async def scenario() -> None:
        node = backend.pipeline()
        # a /64 is one customer's: its addresses rotate through IDs as one source
        hits = [hit(node, address=f"2001:db8:1:2::{i:x}") for i in range(60)]
        outcomes = Counter([await node.settle(h) for h in hits])
        assert outcomes == {Outcome.COUNTED: 50, Outcome.ROTATION: 10}
        other = await node.settle(hit(node, address="2001:db8:1:3::1"))
        assert other is Outcome.COUNTED  # the next /64 is another source

    run(scenario())


def test_a_call_whose_reply_is_lost_is_not_sent_again(tmp_path: Path) -> None:
    """A lost reply leaves the call in doubt: answered 503, never run twice (an engage
    beacon is not deduplicated: run again, it would count twice). Through the same
    proxy, a client that retries after a lost connection does run it twice."""
    settings = Settings(data_dir=tmp_path / "data")
    rules = shared_rules(settings)

    async def scenario(url: str) -> None:
        port = int(url.rsplit(":", 1)[1].split("/")[0])
        lost = []

        async def relay(client: asyncio.StreamReader, to_client: asyncio.StreamWriter) -> None:
            server, to_server = await asyncio.open_connection("127.0.0.1", port)
            asked = [b""]

            async def up() -> None:
                while data := await client.read(65536):
                    asked[0] = data
                    to_server.write(data)

            async def down() -> None:
                while data := await server.read(65536):
                    if b"EVALSHA" in asked[0] and not lost:
                        lost.append(data)
                        to_client.transport.abort()  # the reply is lost on the way
                        to_server.close()
                        return
                    to_client.write(data)

            await asyncio.gather(up(), down(), return_exceptions=True)

        async def engages() -> int:
            entries = await connect(url).xrange(STREAM)
            rows = [decode(fields[b"row"]) for _, fields in entries if b"row" in fields]
            return Counter(row.kind for row in rows)["engage"]

        proxy = await asyncio.start_server(relay, "127.0.0.1", 0)
        proxied = f"redis://127.0.0.1:{proxy.sockets[0].getsockname()[1]}/0"
        direct = Pipeline(lambda: TOURS, _HASHER, RedisLedger(connect(url), rules, b"k" * 32))
        who = str(uuid.uuid4())
        assert await direct.settle(hit(direct, visitor=who)) is Outcome.COUNTED
        retrying = Redis.from_url(proxied, retry_on_error=[RedisConnectionError])
        control = Pipeline(lambda: TOURS, _HASHER, RedisLedger(retrying, rules, b"k" * 32))
        await control.settle(hit(control, visitor=who, kind="engage", seconds=30))
        assert lost, "the proxy lost no reply"
        assert await engages() == 2, "the proxy does not make a retrying client send again"

        lost.clear()
        through = Pipeline(lambda: TOURS, _HASHER, RedisLedger(connect(proxied), rules, b"k" * 32))
        with pytest.raises(Unavailable):
            await through.settle(hit(through, visitor=who, kind="engage", seconds=30))
        assert lost, "the proxy lost no reply"
        assert await engages() == 3  # the ledger's client ran it once: in doubt, not twice
        proxy.close()

    with redis_server(tmp_path / "redis") as url:
        asyncio.run(scenario(url))


def test_dedup_keys_keep_the_bytes_a_running_redis_holds(tmp_path: Path) -> None:
    """A running Redis keeps its dedup windows across an upgrade of the ingest nodes: the
    keys are named as they always were (the tour, the scene of a scene event, the
    visitor's keyed hash), so a view just counted by the old version stays a duplicate."""
    settings = Settings(data_dir=tmp_path / "data")

    async def scenario(url: str) -> None:
        client = connect(url)
        node = Pipeline(lambda: TOURS, _HASHER, RedisLedger(client, shared_rules(settings), KEY))
        who = str(uuid.uuid4())
        hashed = hashlib.blake2b(who.encode(), key=KEY, digest_size=16).digest()
        await node.settle(hit(node, visitor=who))
        await node.settle(hit(node, visitor=who, kind="scene", scene="lobby"))
        keys = {key async for key in client.scan_iter(match=b"tv:{0}:dd:*")}
        assert keys == {b"tv:{0}:dd:t1::" + hashed, b"tv:{0}:dd:t1:lobby:" + hashed}

        other = str(uuid.uuid4())  # counted under the old version, a moment ago
        held = b"tv:{0}:dd:t1::" + hashlib.blake2b(other.encode(), key=KEY, digest_size=16).digest()
        await client.set(held, await client.get(b"tv:{0}:dd:t1::" + hashed))
        assert await node.settle(hit(node, visitor=other)) is Outcome.DUPLICATE

    with redis_server(tmp_path / "redis") as url:
        asyncio.run(scenario(url))
