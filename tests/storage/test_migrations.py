"""Schema versions: a file of any version this code knows opens, each migration runs once.

``fixtures/v1.duckdb.gz`` is a data directory's DuckDB file made by the last code
before numbered migrations, and ``fixtures/v1.json`` what its API answered then, at
the manual clock's reading it holds; ``fixtures/make_v1.py`` says how both were made.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest
from starlette.testclient import TestClient

from tourviews.app import create_app
from tourviews.settings import Settings
from tourviews.storage.clock import ManualClock
from tourviews.storage.database import DATABASE_FILE, SCHEMA, open_database, read_meta
from tourviews.storage.errors import StorageError
from tourviews.storage.migrations import LATEST, MIGRATIONS, VERSION_KEY, Migration, migrate

FIXTURES = Path(__file__).parent / "fixtures"
RECORDED: dict[str, Any] = json.loads((FIXTURES / "v1.json").read_text())

Shape = dict[str, list[tuple[Any, ...]]]


@pytest.fixture
def v1_data_dir(tmp_path: Path) -> Path:
    """A data directory holding the DuckDB file of schema version 1, as it was made."""
    data_dir = tmp_path / "v1"
    data_dir.mkdir()
    with gzip.open(FIXTURES / "v1.duckdb.gz") as packed:
        (data_dir / DATABASE_FILE).write_bytes(packed.read())
    return data_dir


@pytest.fixture
def new_file(tmp_path: Path) -> Path:
    """The DuckDB file of a new data directory, closed."""
    data_dir = tmp_path / "new"
    open_database(data_dir).close()
    return data_dir / DATABASE_FILE


def shape(path: Path) -> Shape:
    """The tables and views of a file: their columns in order, with type, default and
    nullability, and their constraints."""
    with duckdb.connect(str(path), read_only=True) as connection:
        mine = "WHERE database_name = current_database() AND NOT internal"
        return {
            "relations": connection.execute(
                f"SELECT table_name, 'table' FROM duckdb_tables() {mine} UNION ALL "
                f"SELECT view_name, 'view' FROM duckdb_views() {mine} ORDER BY 1"
            ).fetchall(),
            "columns": connection.execute(
                "SELECT table_name, column_name, data_type, column_default, is_nullable "
                f"FROM duckdb_columns() {mine} ORDER BY table_name, column_index"
            ).fetchall(),
            "constraints": connection.execute(
                "SELECT table_name, constraint_type, constraint_column_names::VARCHAR "
                "FROM duckdb_constraints() WHERE database_name = current_database() "
                "ORDER BY ALL"
            ).fetchall(),
        }


def version(path: Path) -> str | None:
    """The schema version a closed file holds."""
    with duckdb.connect(str(path), read_only=True) as connection:
        rows = connection.execute("SELECT value FROM meta WHERE key = ?", [VERSION_KEY]).fetchall()
    return str(rows[0][0]) if rows else None


def set_version(path: Path, value: str) -> None:
    with duckdb.connect(str(path)) as connection:
        connection.execute("UPDATE meta SET value = ? WHERE key = ?", [value, VERSION_KEY])


def test_migrations_are_numbered_one_after_another_from_2() -> None:
    assert [migration.number for migration in MIGRATIONS] == list(range(2, LATEST + 1))


def test_a_new_file_is_made_at_the_latest_version(new_file: Path) -> None:
    assert version(new_file) == str(LATEST)


def test_a_new_file_is_made_from_the_schema_without_migrations(tmp_path: Path) -> None:
    path = tmp_path / DATABASE_FILE
    with duckdb.connect(str(path)) as connection:
        assert migrate(connection, SCHEMA, path) == []
    assert version(path) == str(LATEST)


def test_a_file_of_version_1_opens_at_the_latest_version(
    v1_data_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = v1_data_dir / DATABASE_FILE
    assert version(path) == "1"
    with caplog.at_level("INFO", "tourviews.storage"):
        db = open_database(v1_data_dir)
    assert read_meta(db.cursor(), VERSION_KEY) == str(LATEST)
    db.close()
    assert caplog.messages == [f"brought {path} from schema 1 to {LATEST}"]


def test_a_file_of_version_1_has_every_table_and_column_of_a_new_one(
    v1_data_dir: Path, new_file: Path
) -> None:
    open_database(v1_data_dir).close()
    assert shape(v1_data_dir / DATABASE_FILE) == shape(new_file)


ADDED = {"breakdowns", "goals"}  # keys of answers added since the recording (docs/CONTRACT.md)
# Breakdowns added since the recording, and the one key each has for the file's views:
# a view stored before its field was is counted under it.
ADDED_BREAKDOWNS = {"source": "(direct)", "channel": "direct", "utm_source": "(none)",
                    "utm_medium": "(none)", "utm_campaign": "(none)"}  # fmt: skip


def test_a_file_of_version_1_answers_what_it_answered(v1_data_dir: Path) -> None:
    clock = ManualClock(datetime.fromisoformat(RECORDED["now"]))
    app = create_app(Settings(data_dir=v1_data_dir), clock)
    token = app.service.registry.create_token(RECORDED["org"])  # the file keeps no token
    differ = []
    with TestClient(app, headers={"Authorization": f"Bearer {token}"}) as client:
        for asked in RECORDED["asked"]:
            response = client.get(asked["path"], params=asked["query"])
            assert response.status_code == 200, response.text
            answer = response.json()
            # what answers carry beyond the recorded ones is new, not the file's: the
            # tour listing's list of breakdowns came after version 1 was recorded
            answer = (
                {key: answer[key] for key in asked["answer"]} if ADDED & set(answer) else answer
            )
            if isinstance(answer.get("previous"), dict):  # the stats' goals came later too
                answer["previous"] = {k: v for k, v in answer["previous"].items() if k != "goals"}
            for name, key in ADDED_BREAKDOWNS.items():
                rows = answer.get("breakdown", {}).pop(name, [])
                if [row["key"] for row in rows if row["key"] != key]:
                    differ.append((asked["path"], asked["query"]))
            if answer != asked["answer"]:
                differ.append((asked["path"], asked["query"]))
    assert differ == []


def test_a_version_1_file_whose_first_open_was_cut_short_gets_the_whole_schema(
    tmp_path: Path, new_file: Path
) -> None:
    # meta is made first: an open stopped after it left a file with no version at all
    data_dir = tmp_path / "cut"
    data_dir.mkdir()
    with duckdb.connect(str(data_dir / DATABASE_FILE)) as connection:
        connection.execute("CREATE TABLE meta (key VARCHAR PRIMARY KEY, value VARCHAR NOT NULL)")
    open_database(data_dir).close()
    assert version(data_dir / DATABASE_FILE) == str(LATEST)
    assert shape(data_dir / DATABASE_FILE) == shape(new_file)


def test_a_version_1_file_gains_the_columns_added_after_the_first_release(
    tmp_path: Path, new_file: Path
) -> None:
    data_dir = tmp_path / "first"
    data_dir.mkdir()
    with duckdb.connect(str(data_dir / DATABASE_FILE)) as connection:
        connection.execute("""
            CREATE TABLE meta (key VARCHAR PRIMARY KEY, value VARCHAR NOT NULL);
            INSERT INTO meta VALUES ('schema_version', '1');
            CREATE TABLE tours (tour VARCHAR PRIMARY KEY, org VARCHAR NOT NULL,
                                origins VARCHAR[] NOT NULL, created TIMESTAMP NOT NULL);
            INSERT INTO tours VALUES ('t1', 'acme', [], '2026-11-24 12:00');
            CREATE TABLE tokens (token_hash BLOB PRIMARY KEY, org VARCHAR NOT NULL,
                                 admin BOOLEAN NOT NULL, created TIMESTAMP NOT NULL);
            CREATE TABLE events (ts TIMESTAMP NOT NULL, tour VARCHAR NOT NULL,
                kind VARCHAR NOT NULL, scene VARCHAR, visitor UUID NOT NULL,
                ip_hash BLOB NOT NULL, device VARCHAR NOT NULL, browser VARCHAR NOT NULL,
                os VARCHAR NOT NULL);
        """)  # the tables whose columns grew, as the first release made them
    db = open_database(data_dir)
    tour = db.cursor().execute("SELECT public_counter, timezone FROM tours").fetchall()
    db.close()
    assert tour == [(False, "UTC")]
    assert shape(data_dir / DATABASE_FILE) == shape(new_file)


def test_reopening_applies_no_migration_again(
    v1_data_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    open_database(v1_data_dir).close()
    with caplog.at_level("INFO", "tourviews.storage"):
        open_database(v1_data_dir).close()
    assert caplog.messages == []
    path = v1_data_dir / DATABASE_FILE
    with duckdb.connect(str(path)) as connection:
        assert migrate(connection, SCHEMA, path) == []


def test_each_migration_runs_once_in_order(v1_data_dir: Path) -> None:
    path = v1_data_dir / DATABASE_FILE
    counted = Migration(LATEST + 1, (
        "CREATE TABLE runs (number INTEGER)",
        f"INSERT INTO runs VALUES ({LATEST + 1})",
    ))  # fmt: skip
    with duckdb.connect(str(path)) as connection:
        assert migrate(connection, SCHEMA, path, [*MIGRATIONS, counted]) == [*range(2, LATEST + 2)]
        assert migrate(connection, SCHEMA, path, [*MIGRATIONS, counted]) == []
        assert connection.execute("SELECT number FROM runs").fetchall() == [(LATEST + 1,)]
    assert version(path) == str(LATEST + 1)


def test_a_failed_migration_leaves_the_file_at_the_version_before(new_file: Path) -> None:
    broken = Migration(LATEST + 1, (
        "CREATE TABLE half (number INTEGER)",
        "INSERT INTO half SELECT number FROM no_such_table",
    ))  # fmt: skip
    with duckdb.connect(str(new_file)) as connection:
        with pytest.raises(StorageError) as refused:
            migrate(connection, SCHEMA, new_file, [*MIGRATIONS, broken])
        tables = connection.execute("SELECT table_name FROM duckdb_tables()").fetchall()
    assert str(refused.value).startswith(f"cannot bring {new_file} to schema {LATEST + 1}: ")
    assert "\n" not in str(refused.value)
    assert ("half",) not in tables
    assert version(new_file) == str(LATEST)


def test_a_file_of_a_newer_version_is_refused_in_one_line(new_file: Path) -> None:
    set_version(new_file, str(LATEST + 3))
    with pytest.raises(StorageError) as refused:
        open_database(new_file.parent)
    assert str(refused.value) == (
        f"{new_file} was made by a newer tourviews (schema {LATEST + 3}; this one reads "
        f"up to {LATEST}): upgrade tourviews"
    )
    # left as it was, and closed: DuckDB refuses a read-only connection beside a writing one
    assert version(new_file) == str(LATEST + 3)


def test_a_version_that_is_not_a_number_is_refused_in_one_line(new_file: Path) -> None:
    set_version(new_file, "2b")
    with pytest.raises(StorageError, match=r"holds schema version '2b', which is not a number$"):
        open_database(new_file.parent)


@pytest.mark.parametrize("command", [["stats", "t1"], ["serve", "--port", "0"]])
def test_the_cli_says_a_newer_file_is_refused_in_one_line(
    new_file: Path, command: list[str]
) -> None:
    set_version(new_file, str(LATEST + 3))
    env = {k: v for k, v in os.environ.items() if k not in ("TOURVIEWS_DATA", "TOURVIEWS_SECRET")}
    result = subprocess.run(
        [sys.executable, "-m", "tourviews", *command, "--data", str(new_file.parent)],
        capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr == (
        f"tourviews: error: {new_file} was made by a newer tourviews (schema {LATEST + 3}; "
        f"this one reads up to {LATEST}): upgrade tourviews\n"
    )
