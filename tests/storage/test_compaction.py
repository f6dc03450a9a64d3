"""Physical erasure: after a compaction no byte of an erased or purged visitor is left.

DuckDB does not overwrite what it deletes, and it stores a UUID as a 16-byte integer
with its top bit flipped, so a scan for the text finds nothing while the bytes are
there. ``encodings`` lists every form a scan looks for.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import httpx
import pytest
from fastapi.testclient import TestClient

from tests.builders import SQL_COLUMNS
from tests.conftest import (
    CHROME,
    PROXY,
    Load,
    StartServer,
    found,
    register,
    stored_visitors,
)
from tourviews.app import TourviewsApp
from tourviews.storage.clock import ManualClock
from tourviews.storage.database import COMPACTING, DATABASE_FILE, erased, open_database, write_meta

ROWS = 20_000  # others' events around the erased ones: blocks of real size


def fill(cursor: duckdb.DuckDBPyConnection, visitors: list[str], each: int = 3) -> None:
    """Events of ``visitors`` among ROWS of other visitors, checkpointed into the file."""
    row = "(now()::TIMESTAMP, 't1', 'view', NULL, ?::UUID, '\\x00'::BLOB, 'desktop', 'Chrome', 'Windows', NULL, NULL)"
    for who in visitors:
        for _ in range(each):
            cursor.execute(f"INSERT INTO events ({SQL_COLUMNS}) VALUES {row}", [who])
    cursor.execute(
        f"INSERT INTO events ({SQL_COLUMNS}) SELECT now()::TIMESTAMP, 't1', 'view', NULL, "
        "uuid(), '\\x00'::BLOB, 'desktop', 'Chrome', 'Windows', NULL, NULL FROM range(?)",
        [ROWS],
    )
    cursor.execute("CHECKPOINT")


def test_a_scan_finds_a_deleted_visitor_until_compaction_removes_every_byte(
    data_dir: Path,
) -> None:
    db = open_database(data_dir)
    gone = [str(uuid.uuid4()) for _ in range(20)]
    kept = [str(uuid.uuid4()) for _ in range(5)]
    fill(db.cursor(), gone + kept)
    for who in gone:
        db.cursor().execute("DELETE FROM events WHERE visitor = ?::UUID", [who])
    db.cursor().execute("CHECKPOINT")
    assert found(data_dir, gone), "the scan cannot fail: deleted rows should still be readable"
    write_meta(db.cursor(), "erased_since_compaction", "1")

    db.compact()

    assert found(data_dir, gone) == []
    assert len(found(data_dir, kept)) >= len(kept)  # the scan finds what is there
    cursor = db.cursor()
    assert cursor.execute("SELECT count(*) FROM events").fetchall() == [(ROWS + 3 * len(kept),)]
    assert not erased(cursor)
    # The schema came along: constraints, and the view over the drop counters.
    cursor.execute("INSERT INTO meta VALUES ('k', '1') ON CONFLICT (key) DO UPDATE SET value = '2'")
    cursor.execute("INSERT INTO meta VALUES ('k', '1') ON CONFLICT (key) DO UPDATE SET value = '2'")
    assert cursor.execute("SELECT value FROM meta WHERE key = 'k'").fetchall() == [("2",)]
    assert cursor.execute("SELECT count(*) FROM drop_counters").fetchall() == [(0,)]
    db.close()
    assert sorted(p.name for p in data_dir.iterdir()) == [DATABASE_FILE]


def test_a_copy_left_by_a_crash_is_removed_and_the_file_is_whole(data_dir: Path) -> None:
    db = open_database(data_dir)
    kept = [str(uuid.uuid4())]
    fill(db.cursor(), kept)
    db.close()
    (data_dir / COMPACTING).write_bytes(b"half a copy")
    (data_dir / f"{COMPACTING}.wal").write_bytes(b"and its log")
    db = open_database(data_dir)
    assert db.cursor().execute("SELECT count(*) FROM events").fetchall() == [(ROWS + 3,)]
    db.close()
    assert sorted(p.name for p in data_dir.iterdir()) == [DATABASE_FILE]


def test_threads_that_read_and_write_wait_for_a_compaction_and_go_on(data_dir: Path) -> None:
    db = open_database(data_dir)
    fill(db.cursor(), [])
    stop = threading.Event()
    errors: list[BaseException] = []
    written = 0

    def writer() -> None:
        nonlocal written
        try:
            while not stop.is_set():
                with db.using() as cursor:
                    cursor.execute(
                        f"INSERT INTO events ({SQL_COLUMNS}) VALUES (now()::TIMESTAMP, 't1', "
                        "'view', NULL, uuid(), '\\x00'::BLOB, 'desktop', 'Chrome', 'Windows', NULL, NULL)"
                    )
                written += 1
        except BaseException as exc:
            errors.append(exc)

    def reader() -> None:
        try:
            while not stop.is_set():
                with db.using() as cursor:
                    cursor.execute("SELECT count(*) FROM events").fetchall()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer), threading.Thread(target=reader)]
    for thread in threads:
        thread.start()
    for _ in range(3):
        db.compact()
    stop.set()
    for thread in threads:
        thread.join(30)
    assert errors == []
    assert db.generation == 3
    with db.using() as cursor:
        assert cursor.execute("SELECT count(*) FROM events").fetchall() == [(ROWS + written,)]
    db.close()


def test_a_thread_that_uses_the_database_cannot_compact_it(data_dir: Path) -> None:
    db = open_database(data_dir)
    with db.using(), pytest.raises(RuntimeError, match="cannot compact"):
        db.compact()
    db.close()


def test_the_service_compacts_on_its_own_after_an_erasure(
    app: TourviewsApp, client: TestClient, admin_token: str, clock: ManualClock
) -> None:
    settings = app.service.settings
    gone = str(uuid.uuid4())
    with app.service.db.using() as cursor:
        fill(cursor, [gone])
    assert not app.service.compact_when_due()  # nothing erased yet
    answer = client.delete(
        f"/v1/admin/visitors/{gone}", headers={"Authorization": f"Bearer {admin_token}"}
    )
    assert answer.json() == {"deleted": 3}
    assert found(settings.data_dir, [gone]), "the scan cannot fail"
    assert not app.service.compact_when_due()  # seen now; due a compact_delay later
    clock.advance(timedelta(seconds=settings.compact_delay_seconds - 1))
    assert not app.service.compact_when_due()
    clock.advance(timedelta(seconds=1))
    assert app.service.compact_when_due()
    assert found(settings.data_dir, [gone]) == []
    assert not app.service.compact_when_due()  # done: nothing is pending
    assert settings.compact_delay_seconds <= 12 * 3600  # within a day, with room


def test_forget_then_compact_under_load_loses_no_acknowledged_view(
    data_dir: Path, start: StartServer
) -> None:
    """Through the HTTP contract: beacons in, erasure and compaction, stats and file out."""
    register(data_dir)
    server = start(data_dir, *PROXY, "--tour-rate", "1000000", "--tour-burst", "1000000")
    headers = {"Content-Type": "text/plain", "User-Agent": CHROME}
    gone, kept = str(uuid.uuid4()), str(uuid.uuid4())
    for n, who in enumerate((gone, kept)):
        for scene in ("hall", "roof"):
            body = f'{{"tour": "t1", "visitor": "{who}", "event": "scene", "scene": "{scene}"}}'
            sent = httpx.post(f"{server.url}/v1/beacon", content=body,
                              headers={**headers, "X-Forwarded-For": f"10.9.9.{n}"})  # fmt: skip
            assert sent.status_code == 204
    body = f'{{"tour": "t1", "visitor": "{gone}"}}'
    view = httpx.post(f"{server.url}/v1/beacon", content=body,
                      headers={**headers, "X-Forwarded-For": "10.9.9.0"})  # fmt: skip
    assert view.status_code == 204
    command = ["forget", gone, "--data", str(data_dir)]
    with Load(server.url, 8) as load:
        assert _tourviews(*command).stdout == f"deleted 3 events of {gone}\n"
        compacted = _tourviews("compact", "--data", str(data_dir))
    assert compacted.returncode == 0 and compacted.stdout.startswith("compacted the database")
    assert load.refused == [] and load.acknowledged
    today = datetime.now(UTC).date().isoformat()
    token = _tourviews("tokens", "create", "--org", "acme", "--data", str(data_dir)).stdout
    stats = httpx.get(
        f"{server.url}/v1/tours/t1/stats?from={today}&to={today}",
        headers={"Authorization": f"Bearer {token.strip()}"},
    ).json()
    assert stats["totals"]["views"] == len(load.acknowledged)  # none of the erased visitor's
    assert server.terminate() == 0
    stored = stored_visitors(data_dir)
    assert load.acknowledged <= stored.keys() and gone not in stored
    assert found(data_dir, [gone]) == []
    assert found(data_dir, [kept])


def _tourviews(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tourviews", *args], capture_output=True, text=True, timeout=120
    )
