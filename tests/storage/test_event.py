"""The event spec: the table, the Arrow schema and the stream's rows agree with ``Event``."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime
from pathlib import Path

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.builders import event
from tourviews.ingest.store.writer import EventWriter
from tourviews.storage.database import open_database
from tourviews.storage.event import COLUMNS, Event, arrow_schema, decode, encode

names = st.none() | st.text(max_size=20)
events = st.builds(
    Event,
    ts=st.datetimes(),
    tour=st.text(max_size=20),
    kind=st.sampled_from(("view", "scene", "engage", "action")),
    scene=names,
    visitor=st.uuids(version=4).map(str),
    ip_hash=st.binary(min_size=16, max_size=16),
    device=st.text(max_size=10),
    browser=st.text(max_size=10),
    os=st.text(max_size=10),
    seconds=st.none() | st.integers(0, 2**31 - 1),
    action=names,
    country=st.none() | st.text(min_size=2, max_size=2),
    source=names,
    channel=names,
    utm_source=names,
    utm_medium=names,
    utm_campaign=names,
)


def written_before(e: Event) -> bytes:
    """A stream row as the Redis ledger wrote it before the event spec, with the fields
    added since (plain JSON values, each with a default) at its end."""
    return orjson.dumps(
        (e.ts.isoformat(), e.tour, e.kind, e.scene, e.visitor, e.ip_hash.hex(), e.device,
         e.browser, e.os, e.seconds, e.action, *e[11:])
    )  # fmt: skip


def test_the_events_table_has_the_fields_of_an_event_in_order(tmp_path: Path) -> None:
    db = open_database(tmp_path)
    try:
        described = db.cursor().execute("DESCRIBE events").fetchall()
    finally:
        db.close()
    assert [(name, kind, null) for name, kind, null, *_ in described] == [
        ("ts", "TIMESTAMP", "NO"),
        ("tour", "VARCHAR", "NO"),
        ("kind", "VARCHAR", "NO"),
        ("scene", "VARCHAR", "YES"),
        ("visitor", "UUID", "NO"),
        ("ip_hash", "BLOB", "NO"),
        ("device", "VARCHAR", "NO"),
        ("browser", "VARCHAR", "NO"),
        ("os", "VARCHAR", "NO"),
        ("seconds", "INTEGER", "YES"),
        ("action", "VARCHAR", "YES"),
        ("country", "VARCHAR", "YES"),
        ("source", "VARCHAR", "YES"),
        ("channel", "VARCHAR", "YES"),
        ("utm_source", "VARCHAR", "YES"),
        ("utm_medium", "VARCHAR", "YES"),
        ("utm_campaign", "VARCHAR", "YES"),
    ]
    assert arrow_schema().names == list(Event._fields)


def test_the_spec_does_not_load_pyarrow() -> None:
    """A front worker imports the spec and writes nothing: pyarrow stays out of its memory."""
    check = "import sys, tourviews.storage.event; print('pyarrow' in sys.modules)"
    loaded = subprocess.run([sys.executable, "-c", check], capture_output=True, check=True)
    assert loaded.stdout.strip() == b"False"


def test_events_read_back_through_the_column_list_equal_those_written(tmp_path: Path) -> None:
    written = [event(kind="engage", scene="hall", seconds=12), event(kind="action", action="call")]
    db = open_database(tmp_path)
    try:
        EventWriter(db).write(written, {})
        found = db.cursor().execute(f"SELECT {COLUMNS} FROM events ORDER BY kind").fetchall()
    finally:
        db.close()
    assert [Event(*row) for row in found] == sorted(written, key=lambda e: e.kind)


@given(events)
def test_the_stream_row_of_an_event_is_the_one_written_before_the_spec(e: Event) -> None:
    assert encode(e) == written_before(e)


@given(events)
def test_an_event_decodes_from_its_stream_row(e: Event) -> None:
    assert decode(encode(e)) == e


def test_a_row_written_before_the_country_decodes_without_one() -> None:
    counted = event(country="KZ")
    before = orjson.loads(encode(counted))[: Event._fields.index("country")]
    assert decode(orjson.dumps(before)) == counted._replace(country=None)


def test_a_row_written_before_the_spec_decodes() -> None:
    row = (
        b'["2026-11-24T12:00:00.000250","t1","scene","hall","4c081d77-446a-4f8f-89c6-86b91f3a1094",'
        b'"000102030405060708090a0b0c0d0e0f","mobile","Mobile Safari","iOS",null,null]'
    )
    assert decode(row) == Event(
        ts=datetime(2026, 11, 24, 12, 0, 0, 250), tour="t1", kind="scene", scene="hall",
        visitor="4c081d77-446a-4f8f-89c6-86b91f3a1094", ip_hash=bytes(range(16)),
        device="mobile", browser="Mobile Safari", os="iOS", seconds=None, action=None,
    )  # fmt: skip


VALUES = orjson.loads(encode(event()))  # a good row's values, to spoil


@pytest.mark.parametrize(
    "row",
    [
        b"not json",
        b'["not", "a", "row"]',
        b"{}",
        b'"2026-11-24T12:00:00"',
        b"null",
        orjson.dumps([*VALUES, "one too many"]),
        orjson.dumps(VALUES[:9]),  # no seconds and no action, neither with a default
        orjson.dumps([None, *VALUES[1:]]),  # no time
        orjson.dumps([*VALUES[:5], "not hex", *VALUES[6:]]),
    ],
)
def test_a_row_that_is_not_an_event_is_refused(row: bytes) -> None:
    with pytest.raises((ValueError, TypeError)):
        decode(row)
