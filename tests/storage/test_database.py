"""The DuckDB file: every read finishes its result, so the next write on that cursor works.

DuckDB refuses an appender, an Arrow insert or a registered table on a connection
whose last result was not read to the end. The writer and housekeeping use those,
so a read that stops after one row must never precede them on the same thread.
"""

from __future__ import annotations

import ast
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import orjson
from starlette.testclient import TestClient

from tests.builders import event
from tests.conftest import CHROME
from tourviews.app import create_app
from tourviews.ingest.store.writer import SMALL_BATCH, EventWriter
from tourviews.service import daily_round
from tourviews.settings import Settings
from tourviews.storage.clock import ManualClock
from tourviews.storage.database import open_database
from tourviews.storage.event import Event

ROOT = Path(__file__).parents[2]
PACKAGES = ("ingest", "analytics", "storage", "tourviews", "benchmarks")
DAY = date(2026, 11, 23)
BUSY_DAY = 100_000  # events: a real day's volume, written as the service would


def day_of_events(day: date, count: int, tour: str = "t1") -> list[Event]:
    start = datetime.combine(day, datetime.min.time())
    step = timedelta(days=1) / count
    return [event(ts=start + n * step, tour=tour) for n in range(count)]


def write_all(writer: EventWriter, rows: list[Event], batch: int = 1_000) -> None:
    for start in range(0, len(rows), batch):
        writer.write(rows[start : start + batch], {})


def on_one_thread(*steps: Callable[[], object]) -> None:
    """Run ``steps`` in order on one new thread (one cursor), re-raising what fails."""
    failures: list[BaseException] = []

    def run() -> None:
        try:
            for step in steps:
                step()
        except BaseException as exc:
            failures.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if failures:
        raise failures[0]


def test_no_code_reads_a_result_only_partly() -> None:
    calls = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Attribute) and node.attr in ("fetchone", "fetchmany"):
                    calls.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert calls == [], (
        "read one row with tourviews.storage.database.one(), which finishes the result"
    )


def test_a_write_after_the_daily_round_on_the_same_thread_succeeds(tmp_path: Path) -> None:
    db = open_database(tmp_path / "data")
    writer = EventWriter(db)
    try:
        on_one_thread(
            lambda: write_all(writer, day_of_events(DAY, BUSY_DAY)),
            lambda: daily_round(db.cursor(), DAY + timedelta(days=1), 30),
            # an Arrow insert and an appender: both refuse a half-read result
            lambda: writer.write(day_of_events(DAY + timedelta(days=1), SMALL_BATCH), {}),
            lambda: writer.write(day_of_events(DAY + timedelta(days=1), 10), {}),
        )
        rolled = db.cursor().execute(
            "SELECT views FROM rollups WHERE tour = 't1' AND day = ? AND dimension = 'total'",
            [DAY],
        )
        assert rolled.fetchall() == [(BUSY_DAY,)]
        stored = db.cursor().execute("SELECT count(*) FROM events").fetchall()
        assert stored == [(BUSY_DAY + SMALL_BATCH + 10,)]
    finally:
        db.close()


def test_the_service_across_a_day_boundary_keeps_its_housekeeping_cursor_usable(
    tmp_path: Path,
) -> None:
    clock = ManualClock(datetime(2026, 11, 23, 22, 0, tzinfo=UTC))
    app = create_app(Settings(data_dir=tmp_path / "data"), clock)
    service = app.service
    service.registry.put_tour("t1", "acme")
    token = service.registry.create_token("acme")
    with TestClient(app, headers={"user-agent": CHROME}) as client:

        def send_view() -> None:
            body = orjson.dumps({"tour": "t1", "visitor": str(uuid.uuid4())})
            answer = client.post("/v1/beacon", content=body, headers={"content-type": "text/plain"})
            assert answer.status_code == 204

        for _ in range(20):
            send_view()
        writer = EventWriter(service.db)
        # The busy day, written by a thread of its own before midnight.
        on_one_thread(lambda: write_all(writer, day_of_events(DAY, BUSY_DAY)))
        clock.set(datetime(2026, 11, 24, 0, 15, tzinfo=UTC))  # the day ended 10 minutes ago
        # Two housekeeping rounds on one thread (the daily one, then a minute's), and a
        # write there after them: a half-read result left by a round would refuse it.
        late = day_of_events(DAY + timedelta(days=1), SMALL_BATCH)
        on_one_thread(service.keep_house, service.keep_house, lambda: writer.write(late, {}))
        for _ in range(5):
            send_view()
        stats = client.get(
            "/v1/tours/t1/stats?from=2026-11-23&to=2026-11-24",
            headers={"authorization": f"Bearer {token}"},
        ).json()
        rolled = service.db.cursor().execute("SELECT day FROM rolled_days").fetchall()
    assert rolled == [(DAY,)]
    by_day = {entry["start"][:10]: entry["views"] for entry in stats["series"]}
    assert by_day == {"2026-11-23": BUSY_DAY + 20, "2026-11-24": SMALL_BATCH + 5}
