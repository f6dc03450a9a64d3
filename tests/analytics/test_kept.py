"""Reads of completed days are kept (``tourviews.analytics.kept``), and nothing kept outlives a change.

Each test reads every period of the last days (so their figures are kept), changes
the data the way the service does (erasure, late events rolled up again, purge, a
clock set back), and reads again: the figures must equal a count over the events
as they now are (``test_exact``'s brute force), not what was kept.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import pytest

from tests.analytics.test_exact import TODAY, assert_exact, stored, traffic
from tests.builders import event
from tourviews.analytics import kept
from tourviews.analytics.erasure import forget
from tourviews.analytics.period import Period
from tourviews.analytics.retention import purge
from tourviews.analytics.rollup import roll_up_completed
from tourviews.analytics.stats import tour_stats
from tourviews.ingest.store.writer import EventWriter
from tourviews.storage.clock import ManualClock
from tourviews.storage.database import Database
from tourviews.storage.event import Event
from tourviews.storage.registry import Registry

RECENT = TODAY - timedelta(days=3)  # periods from here on: every check reads ten of them


@pytest.fixture(autouse=True)
def nothing_kept() -> None:
    """The store is the process's: another test's reads may be in it."""
    kept.clear()


@pytest.fixture
def events() -> list[Event]:
    return traffic(random.Random(11))


@pytest.fixture
def db(events: list[Event]) -> Iterator[Database]:
    yield from stored(events)


def kept_reads(db: Database, events: list[Event]) -> int:
    """Read every recent period (checking it) and say how many reads are now kept."""
    assert_exact(db, events, first=RECENT)
    return len(kept._kept)


def test_completed_days_are_read_once_then_kept(db: Database, events: list[Event]) -> None:
    roll_up_completed(db.cursor(), TODAY)
    assert kept_reads(db, events) > 0
    period = Period(RECENT, TODAY - timedelta(days=1), "day")
    first = tour_stats(db.cursor(), "t1", period)
    assert tour_stats(db.cursor(), "t1", period) == first


def test_an_erased_visitor_is_gone_from_kept_reads(db: Database, events: list[Event]) -> None:
    roll_up_completed(db.cursor(), TODAY)
    kept_reads(db, events)
    recent = [e for e in events if e.ts.date() >= RECENT]
    regular = max({e.visitor for e in recent}, key=lambda v: sum(e.visitor == v for e in recent))
    assert forget(db.cursor(), regular) > 0
    kept_reads(db, [e for e in events if e.visitor != regular])


def test_late_events_rolled_up_again_reach_kept_reads(db: Database, events: list[Event]) -> None:
    roll_up_completed(db.cursor(), TODAY)
    kept_reads(db, events)
    late = [event(ts=datetime.combine(TODAY - timedelta(days=2), datetime.max.time()),
                  scene="lobby", device="mobile", browser="Mobile Safari", os="iOS")]  # fmt: skip
    EventWriter(db).write(late, {})
    assert roll_up_completed(db.cursor(), TODAY) == [TODAY - timedelta(days=2)]
    kept_reads(db, sorted(events + late, key=lambda row: row.ts))


def test_days_un_rolled_by_a_clock_set_back_are_read_again(
    db: Database, events: list[Event]
) -> None:
    roll_up_completed(db.cursor(), TODAY)
    kept_reads(db, events)
    roll_up_completed(db.cursor(), RECENT)  # the clock went back: later days are un-rolled
    extra = [
        event(ts=datetime.combine(RECENT, datetime.min.time()) + timedelta(hours=12), tour="t2")
    ]
    EventWriter(db).write(extra, {})
    kept_reads(db, sorted(events + extra, key=lambda row: row.ts))


def test_purge_replaces_what_was_kept(db: Database, events: list[Event]) -> None:
    roll_up_completed(db.cursor(), TODAY)
    period = Period(TODAY - timedelta(days=6), TODAY - timedelta(days=1), "day")
    before = tour_stats(db.cursor(), "t1", period)["totals"]
    assert before["visitors_exact"]
    purge(db.cursor(), TODAY, days=4)  # the period now reaches past raw retention
    after = tour_stats(db.cursor(), "t1", period)["totals"]
    assert not after["visitors_exact"]
    assert after["views"] == before["views"]
    kept_reads(db, events)


def test_reads_of_days_not_rolled_up_are_not_kept(db: Database) -> None:
    """Today's document compares with yesterday, not rolled up yet: its late views count."""
    yesterday = TODAY - timedelta(days=1)
    roll_up_completed(db.cursor(), yesterday)
    period = Period(TODAY, TODAY, "day")
    before = tour_stats(db.cursor(), "t1", period)["previous"]["views"]
    late = datetime.combine(yesterday, datetime.max.time())
    EventWriter(db).write([event(ts=late)], {})
    assert tour_stats(db.cursor(), "t1", period)["previous"]["views"] == before + 1


def test_a_deleted_tours_figures_do_not_reach_the_next_owner(db: Database) -> None:
    roll_up_completed(db.cursor(), TODAY)
    period = Period(RECENT, TODAY - timedelta(days=1), "day")
    assert tour_stats(db.cursor(), "t1", period)["totals"]["views"] > 0  # now kept
    registry = Registry(db, ManualClock(datetime(2026, 11, 10, tzinfo=UTC)))
    registry.put_tour("t1", "acme")
    assert registry.delete_tour("t1")
    registry.put_tour("t1", "another-org")
    document = tour_stats(db.cursor(), "t1", period)
    assert document["totals"]["views"] == document["totals"]["visits"] == 0
    assert document["previous"]["views"] == 0


def test_a_new_token_forgets_everything_kept(db: Database, events: list[Event]) -> None:
    """An erased visitor's sketches (kept action rows) do not stay in memory."""
    roll_up_completed(db.cursor(), TODAY)
    kept_reads(db, events)
    before = dict(kept._kept)
    forget(db.cursor(), events[0].visitor)
    tour_stats(db.cursor(), "t1", Period(RECENT, RECENT, "day"))
    assert before and all(kept._kept.get(key) is not value for key, value in before.items())


def test_the_store_forgets_the_least_recently_read_past_its_bound(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    roll_up_completed(db.cursor(), TODAY)
    monkeypatch.setattr(kept, "BYTES", 64_000)
    days = [date(2026, 11, 1) + timedelta(days=n) for n in range(9)]
    for day in days:
        tour_stats(db.cursor(), "t1", Period(day, day, "day"))
        tour_stats(db.cursor(), "t1", Period(days[0], days[0], "day"))  # read again and again
    assert 0 < sum(weight for _, weight in kept._kept.values()) <= 64_000
    first = tour_stats(db.cursor(), "t1", Period(days[0], days[0], "day"))
    assert any(repr(days[0]) in repr(key) for key in kept._kept)  # the often read one stayed
    assert first == tour_stats(db.cursor(), "t1", Period(days[0], days[0], "day"))


def test_one_read_looks_up_the_standing_once_and_what_changes_during_it_is_read_afresh(
    db: Database, events: list[Event], monkeypatch: pytest.MonkeyPatch
) -> None:
    roll_up_completed(db.cursor(), TODAY)
    looked_up: list[str | None] = []
    real = kept.standing

    def counted(cursor: object) -> tuple[str | None, date | None]:
        found = real(cursor)  # type: ignore[arg-type]
        looked_up.append(found[0])
        return found

    monkeypatch.setattr(kept, "standing", counted)
    period = Period(RECENT, TODAY - timedelta(days=1), "day")
    tour_stats(db.cursor(), "t1", period)
    assert len(looked_up) == 1  # one document, several kept parts
    recent = [e for e in events if e.ts.date() >= RECENT]
    regular = max({e.visitor for e in recent}, key=lambda v: sum(e.visitor == v for e in recent))
    with kept.reading(db.cursor()):  # an erasure in the middle of a read
        tour_stats(db.cursor(), "t1", period)
        assert forget(db.cursor(), regular) > 0
        tour_stats(db.cursor(), "t1", period)
    assert len(set(looked_up)) == 1  # the whole read went by the token at its start
    kept_reads(db, [e for e in events if e.visitor != regular])  # the next read: nothing stale
