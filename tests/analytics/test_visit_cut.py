"""The two cuts of visits agree: DuckDB's visit query (rollups, long spans) and the
Python cut of a short span's events (``tourviews.analytics.visits.cut``, a tour's today).

Events are drawn on a coarse clock so that ties, pauses of exactly 30 minutes and
UTC midnight come up often; both cuts read the same DuckDB file.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests import builders
from tourviews.analytics.visits import EVENTS, OF_TOUR, cut
from tourviews.ingest.store.writer import EventWriter
from tourviews.storage.database import Database, open_database
from tourviews.storage.event import Event

START = datetime(2026, 11, 23, 22, 0)
END = START + timedelta(days=2)
VISITORS = [str(uuid.UUID(int=n, version=4)) for n in (1, 2, 3)]
KINDS = ("view", "view", "scene", "scene", "engage", "action")

event = st.tuples(
    st.sampled_from(VISITORS),
    st.sampled_from((0, 0, 1, 15, 29, 30, 31, 45, 60, 90, 120, 121, 1440)),  # minutes later
    st.sampled_from(KINDS),
    st.sampled_from(("lobby", "hall", "roof", None)),
    st.sampled_from(("lead-form", "call")),
)


def rows_of(events: list[tuple[str, int, str, str | None, str]]) -> list[Event]:
    rows: list[Event] = []
    at = {visitor: START for visitor in VISITORS}
    for n, (visitor, minutes, kind, scene, action) in enumerate(events):
        at[visitor] += timedelta(minutes=minutes)
        if at[visitor] >= END:
            break
        seconds = 1 + n % 90 if kind == "engage" else None
        scene = None if kind == "action" else scene
        tour = "t2" if n % 7 == 6 else "t1"  # another tour's events sit among them
        rows.append(builders.event(ts=at[visitor], tour=tour, kind=kind, scene=scene,
                                   visitor=visitor, seconds=seconds,
                                   action=action if kind == "action" else None))  # fmt: skip
    return sorted(rows, key=lambda row: row.ts)


def counted(rows: list[tuple[str, str, int, Any]]) -> Counter[tuple[str, str, int, Any]]:
    return Counter(
        (dimension, key, amount, tuple(sorted(ids)) if dimension == "action" else None)
        for dimension, key, amount, ids in rows
    )


@pytest.fixture(scope="module")
def db() -> Iterator[Database]:
    with tempfile.TemporaryDirectory() as folder:
        db = open_database(Path(folder))
        try:
            yield db
        finally:
            db.close()


# make soak draws ten times as many (TOURVIEWS_CUT_EXAMPLES)
@settings(max_examples=int(os.environ.get("TOURVIEWS_CUT_EXAMPLES", "100")), deadline=None)
@given(events=st.lists(event, max_size=40))
def test_the_python_cut_equals_the_visit_query(db: Database, events: list[Any]) -> None:
    cursor = db.cursor()
    cursor.execute("DELETE FROM events")
    EventWriter(db).write(rows_of(events), {})
    parameters = {"tour": "t1", "start": START, "end": END}
    query = [row[2:] for row in cursor.execute(OF_TOUR, parameters).fetchall()]
    python = cut(cursor.execute(EVENTS, parameters).fetchall())
    assert counted(python) == counted(query)


def test_the_cut_of_a_known_day() -> None:
    """A view, a scene 31 minutes later (no visit), a view at midnight minus a minute and
    its scene after midnight (the visit ends at midnight): one lobby visit, one hall visit."""
    a = VISITORS[0]
    rows = [
        builders.event(ts=START, scene="lobby", visitor=a),
        builders.event(ts=START + timedelta(minutes=31), kind="scene", scene="hall", visitor=a),
        builders.event(ts=START + timedelta(minutes=119), scene="hall", visitor=a),
        builders.event(ts=START + timedelta(minutes=121), kind="scene", scene="roof", visitor=a),
    ]
    with tempfile.TemporaryDirectory() as folder:
        db = open_database(Path(folder))
        try:
            EventWriter(db).write(rows, {})
            cursor = db.cursor()
            parameters = {"tour": "t1", "start": START, "end": END}
            found = counted(cut(cursor.execute(EVENTS, parameters).fetchall()))
        finally:
            db.close()
    assert found[("visits", "", 2, None)] == 1
    assert found[("entry", "lobby", 1, None)] == 1
    assert found[("entry", "hall", 1, None)] == 1
    assert found[("scenes", "1", 2, None)] == 1  # neither visit reached a second scene
    assert not any(part == "transition" for part, *_ in found)
