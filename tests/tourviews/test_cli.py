"""The ``tourviews`` command as a user runs it, with and without a server on the data."""

from __future__ import annotations

import os
import re
import shlex
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import orjson
import pytest

from tests.conftest import CHROME, ServerProcess, StartServer, visitor


def run(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("TOURVIEWS_DATA", "TOURVIEWS_SECRET")}
    return subprocess.run(
        [sys.executable, "-m", "tourviews", *args, "--data", str(data_dir)],
        capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip


def ok(data_dir: Path, *args: str) -> str:
    result = run(data_dir, *args)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return result.stdout


def beacon(server: ServerProcess, tour: str) -> int:
    body = orjson.dumps({"tour": tour, "visitor": visitor()})
    headers = {"Content-Type": "text/plain", "User-Agent": CHROME}
    return httpx.post(f"{server.url}/v1/beacon", content=body, headers=headers).status_code


def test_registry_and_tokens_work_offline(data_dir: Path) -> None:
    assert ok(data_dir, "tours", "add", "t1", "--org", "acme") == "registered t1 for acme\n"
    ok(data_dir, "tours", "add", "t2", "--org", "acme", "--origin", "https://tours.example.com")
    listing = ok(data_dir, "tours", "list")
    assert "t1" in listing and "https://tours.example.com" in listing
    token = ok(data_dir, "tokens", "create", "--org", "acme")
    assert re.fullmatch(r"tv_[A-Za-z0-9_-]{43}\n", token)
    assert ok(data_dir, "tokens", "create", "--org", "ops", "--admin").startswith("tv_")


def test_stats_offline_prints_the_contract_document(data_dir: Path) -> None:
    ok(data_dir, "tours", "add", "t1", "--org", "acme")
    document = orjson.loads(ok(data_dir, "stats", "t1", "--format", "json"))
    assert set(document) == {"tour", "from", "to", "interval", "totals", "series", "breakdown"}
    assert document["totals"] == {"views": 0, "visitors": 0, "visitors_exact": True}
    assert len(document["series"]) == 30
    assert set(document["breakdown"]) == {"device", "browser", "os", "scene"}
    assert "views 0" in ok(data_dir, "stats", "t1")
    csv = ok(
        data_dir, "stats", "t1", "--format", "csv", "--from", "2026-11-01", "--to", "2026-11-03"
    )
    assert csv.splitlines() == [
        "start,views,visitors",
        "2026-11-01T00:00:00Z,0,0",
        "2026-11-02T00:00:00Z,0,0",
        "2026-11-03T00:00:00Z,0,0",
    ]


def test_commands_go_through_a_running_server(data_dir: Path, start: StartServer) -> None:
    ok(data_dir, "tours", "add", "t1", "--org", "acme")
    server = start(data_dir)
    ok(data_dir, "tours", "add", "t2", "--org", "acme")
    assert beacon(server, "t2") == 204  # the server knows the new tour at once
    assert "t2" in ok(data_dir, "tours", "list")
    document = orjson.loads(ok(data_dir, "stats", "t2", "--format", "json"))
    assert document["totals"]["views"] == 1
    assert ok(data_dir, "tokens", "create", "--org", "acme").startswith("tv_")
    assert orjson.loads(ok(data_dir, "abuse", "--format", "json"))["totals"]["counted"] == 1


BAD = [
    (("stats", "t1", "--from", "2026-13-01"), "--from"),
    (("stats", "t1", "--from", "2026-11-10", "--to", "2026-11-01"), "--from"),
    (("stats", "t1", "--from", "2024-01-01", "--to", "2026-01-01"), "--to"),
    (("stats", "nosuchtour"), "unknown tour"),
    (("tours", "add", "bad tour!", "--org", "acme"), "TOUR"),
    (("tours", "add", "t3", "--org", "acme", "--origin", "notaurl"), "--origin"),
    (("tokens", "create", "--org", "a/b"), "--org"),
]


@pytest.mark.parametrize(("args", "named"), BAD)
def test_bad_input_is_one_line_naming_the_flag_offline(
    data_dir: Path, args: tuple[str, ...], named: str
) -> None:
    ok(data_dir, "tours", "add", "t1", "--org", "acme")
    result = run(data_dir, *args)
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("tourviews: error: ")
    assert named in result.stderr


def test_bad_input_is_one_line_naming_the_flag_through_a_server(
    data_dir: Path, start: StartServer
) -> None:
    ok(data_dir, "tours", "add", "t1", "--org", "acme")
    start(data_dir)
    for args, named in BAD:
        result = run(data_dir, *args)
        assert result.returncode == 1, args
        assert result.stderr.startswith("tourviews: error: ") and result.stderr.count("\n") == 1
        assert named in result.stderr, (args, result.stderr)


def test_bad_serve_flags_are_one_line_errors(data_dir: Path) -> None:
    for args in (("--trusted-proxy", "nope"), ("--ip-prefix-v4", "40"), ("--visitor-burst", "0")):
        result = run(data_dir, "serve", "--port", "0", *args)
        assert result.returncode == 1
        assert result.stderr.startswith("tourviews: error: --")
        assert "Traceback" not in result.stderr


def test_quickstart_prints_a_working_curl_line_and_the_stats_command(
    data_dir: Path, start: StartServer
) -> None:
    server = start(data_dir, "--quickstart")
    printed = server.output().decode()
    assert re.search(r"^\s+tv_[A-Za-z0-9_-]{43}$", printed, re.MULTILINE)
    curl = printed[printed.index("curl ") :].split("\n\n")[0].replace("\\\n", " ")
    words = shlex.split(curl)
    url = next(word for word in words if word.startswith("http"))
    agent = words[words.index("-A") + 1]
    body = words[words.index("-d") + 1]
    headers = {"Content-Type": "text/plain", "User-Agent": agent}
    assert httpx.post(url, content=body, headers=headers).status_code == 204
    assert "stats demo" in printed
    document = orjson.loads(ok(data_dir, "stats", "demo", "--format", "json"))
    assert document["totals"]["views"] == 1


def test_quickstart_does_nothing_on_a_data_directory_in_use(
    data_dir: Path, start: StartServer
) -> None:
    ok(data_dir, "tours", "add", "t1", "--org", "acme")
    server = start(data_dir, "--quickstart")
    assert "tv_" not in server.output().decode()
    assert "demo" not in ok(data_dir, "tours", "list")


def test_forget_and_purge_work_offline_and_through_a_server(
    data_dir: Path, start: StartServer
) -> None:
    ok(data_dir, "tours", "add", "t1", "--org", "acme")
    server = start(data_dir)
    who = visitor()
    body = orjson.dumps({"tour": "t1", "visitor": who})
    headers = {"Content-Type": "text/plain", "User-Agent": CHROME}
    assert httpx.post(f"{server.url}/v1/beacon", content=body, headers=headers).status_code == 204
    assert ok(data_dir, "forget", who) == f"deleted 1 events of {who}\n"
    assert ok(data_dir, "purge") == "deleted 0 raw events past retention\n"
    assert server.terminate() == 0
    assert ok(data_dir, "forget", who) == f"deleted 0 events of {who}\n"
    assert ok(data_dir, "purge") == "deleted 0 raw events past retention\n"
    result = run(data_dir, "forget", "not-a-uuid")
    assert result.returncode == 1
    assert (
        result.stderr
        == "tourviews: error: VISITOR: visitor must be a UUID in 8-4-4-4-12 hex form\n"
    )


def test_stats_table_has_sparklines_and_breakdowns(data_dir: Path, start: StartServer) -> None:
    ok(data_dir, "tours", "add", "t1", "--org", "acme")
    server = start(data_dir)
    assert beacon(server, "t1") == 204
    table = ok(data_dir, "stats", "t1")
    assert "views    |" in table and "█" in table
    assert "device" in table and "desktop" in table


def test_command_line_mistakes_are_one_line(tmp_path: Path) -> None:
    a_file = tmp_path / "file"
    a_file.write_text("")
    cases = [
        (["--bogus"], "unrecognized arguments: --bogus"),
        ([], "a command is required"),
        (["stats", "t1", "--data", str(a_file)], "is a file, not a directory"),
        (["tours", "list", "--data", str(tmp_path / "none")], "does not exist"),
        (["abuse", "--data", str(tmp_path / "none")], "does not exist"),
    ]
    for args, message in cases:
        result = subprocess.run([sys.executable, "-m", "tourviews", *args],
                                capture_output=True, text=True, timeout=60)  # fmt: skip
        assert result.returncode == 1, args
        assert result.stderr.startswith("tourviews: error: ") and message in result.stderr
        assert result.stderr.count("\n") == 1, result.stderr
    assert not (tmp_path / "none").exists()  # a read command creates nothing


@pytest.mark.parametrize("content", [b"{bad", b"[1, 2]", b'{"2026-11-24": 7}'])
def test_corrupt_state_files_are_one_line(data_dir: Path, content: bytes) -> None:
    ok(data_dir, "tours", "add", "t1", "--org", "acme")
    (data_dir / "server.json").write_bytes(content)  # not a server of ours: ignored
    assert "t1" in ok(data_dir, "tours", "list")
    (data_dir / "salts.json").write_bytes(content)
    result = run(data_dir, "serve", "--port", "0")
    assert result.returncode == 1
    assert result.stderr.startswith("tourviews: error: ") and "salts.json" in result.stderr
    assert "Traceback" not in result.stderr


def test_serve_on_a_busy_port_is_one_line_and_creates_nothing(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run(tmp_path / "data", "serve", "--port", str(port), "--quickstart")
    assert result.returncode == 1
    assert result.stderr == f"tourviews: error: port {port} is in use: choose another with --port\n"
    assert not (tmp_path / "data").exists()  # no token made that no one would see


def test_the_demo_refuses_a_directory_with_other_tours(data_dir: Path) -> None:
    ok(data_dir, "tours", "add", "real-tour", "--org", "acme")
    result = run(data_dir, "demo", "--days", "1")
    assert result.returncode == 1
    assert result.stderr.startswith("tourviews: error: ") and "real-tour" in result.stderr
    report = orjson.loads(ok(data_dir, "abuse", "--format", "json"))
    assert sum(report["totals"].values()) == 0  # nothing was sent
