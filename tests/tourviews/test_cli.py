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
    assert set(document) == {
        "tour", "from", "to", "interval", "timezone", "totals", "previous", "series", "breakdown",
        "breakdowns_exact", "transitions", "goals",
    }  # fmt: skip
    assert document["totals"].items() >= {"views": 0, "visitors": 0, "visitors_exact": True}.items()
    assert len(document["series"]) == 30
    assert set(document["breakdown"]) == {
        "device", "browser", "os", "scene", "entry_scene", "exit_scene", "action", "source",
        "channel", "utm_source", "utm_medium", "utm_campaign",
    }  # fmt: skip
    assert "views 0" in ok(data_dir, "stats", "t1")
    csv = ok(
        data_dir, "stats", "t1", "--format", "csv", "--from", "2026-11-01", "--to", "2026-11-03"
    )
    assert csv.splitlines() == [
        "start,views,visitors,visits,engaged_seconds",
        "2026-11-01T00:00:00Z,0,0,0,0",
        "2026-11-02T00:00:00Z,0,0,0,0",
        "2026-11-03T00:00:00Z,0,0,0,0",
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
    # through a server, a slash or nothing would have reached the URL: Not Found, a redirect
    (("tours", "add", "bad/id", "--org", "acme"), "TOUR"),
    (("tours", "add", "", "--org", "acme"), "TOUR"),
    (("stats", "../x"), "TOUR"),
    (("tokens", "create", "--org", "acme", "--tour", "a/b"), "--tour"),
    (("tours", "add", "t3", "--org", "acme", "--origin", "notaurl"), "--origin"),
    (("tokens", "create", "--org", "a/b"), "--org"),
    (("stats", "t1", "--filter", "colour:red"), "--filter"),
    (("stats", "t1", "--filter", "device"), "--filter"),
    (("stats", "t1", "--filter", "device:mobile", "--filter", "scene:"), "--filter"),
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


def test_serve_and_ingest_flags_left_out_give_the_default_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tourviews.cli import _parser, ingest_settings, serve_settings
    from tourviews.settings import Settings

    monkeypatch.delenv("TOURVIEWS_REDIS", raising=False)
    assert serve_settings(tmp_path, _parser().parse_args(["serve"])) == Settings(data_dir=tmp_path)
    redis = "redis://127.0.0.1:6379/0"
    node = _parser().parse_args(["ingest", "--redis", redis])
    assert ingest_settings(node) == Settings(redis_url=redis)


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
    assert result.stderr == (
        f"tourviews: error: port {port} is in use: choose another with --port "
        "(make run PORT=8001)\n"
    )
    assert not (tmp_path / "data").exists()  # no token made that no one would see


def test_the_demo_refuses_a_directory_with_other_tours(data_dir: Path) -> None:
    ok(data_dir, "tours", "add", "real-tour", "--org", "acme")
    result = run(data_dir, "demo", "--days", "1")
    assert result.returncode == 1
    assert result.stderr.startswith("tourviews: error: ") and "real-tour" in result.stderr
    report = orjson.loads(ok(data_dir, "abuse", "--format", "json"))
    assert sum(report["totals"].values()) == 0  # nothing was sent


def test_quickstart_shows_its_token_at_every_start_until_it_is_used(
    data_dir: Path, start: StartServer, tmp_path: Path
) -> None:
    # The first start fails on a busy port after the check: nothing is lost.
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        refused = run(data_dir, "serve", "--port", str(port), "--quickstart")
    assert refused.returncode == 1
    server = start(data_dir, "--quickstart")
    first = server.output().decode()
    [token] = re.findall(r"^\s+(tv_[A-Za-z0-9_-]{43})$", first, re.MULTILINE)
    assert f"{server.url}/dashboard#token={token}" in first
    assert server.terminate() == 0

    server = start(data_dir, "--quickstart")  # not used yet: shown again
    assert f"/dashboard#token={token}" in server.output().decode()
    tours = httpx.get(f"{server.url}/v1/tours", headers={"Authorization": f"Bearer {token}"})
    assert tours.status_code == 200
    assert server.terminate() == 0

    server = start(data_dir, "--quickstart")  # used: the operator has it
    assert token not in server.output().decode()
    assert not (data_dir / "quickstart-token").exists()


def test_tours_add_never_moves_a_tour_without_move_and_keeps_what_is_not_given(
    data_dir: Path, start: StartServer
) -> None:
    ok(data_dir, "tours", "add", "t1", "--org", "a", "--origin", "https://a.example.com",
       "--scene", "hall")  # fmt: skip
    server = None
    for _ in ("offline", "through a server"):
        moved = run(data_dir, "tours", "add", "t1", "--org", "b")
        assert moved.returncode == 1 and "--move" in moved.stderr
        assert len(moved.stderr.splitlines()) == 1
        ok(data_dir, "tours", "add", "t1", "--org", "a")  # the same org, nothing else given
        assert ok(data_dir, "tours", "list").split() == [
            "t1", "a", "https://a.example.com", "scenes:", "hall"
        ]  # fmt: skip
        server = server or start(data_dir)
    ok(data_dir, "tours", "add", "t1", "--org", "b", "--move")
    assert ok(data_dir, "tours", "list").split()[:2] == ["t1", "b"]
    assert server.terminate() == 0


def test_a_deleted_tours_history_never_reaches_the_next_owner(
    data_dir: Path, start: StartServer
) -> None:
    ok(data_dir, "tours", "add", "t3", "--org", "a")
    admin = ok(data_dir, "tokens", "create", "--org", "ops", "--admin").strip()
    b_token = ok(data_dir, "tokens", "create", "--org", "b").strip()
    server = start(data_dir)
    headers = {"Content-Type": "text/plain", "User-Agent": CHROME}
    for n in range(3):
        body = orjson.dumps({"tour": "t3", "visitor": visitor()})
        sent = httpx.post(f"{server.url}/v1/beacon", content=body,
                          headers={**headers, "X-Forwarded-For": f"10.0.0.{n}"})  # fmt: skip
        assert sent.status_code == 204
    auth = {"Authorization": f"Bearer {admin}"}
    assert httpx.delete(f"{server.url}/v1/admin/tours/t3", headers=auth).json() == {"deleted": True}
    put = httpx.put(f"{server.url}/v1/admin/tours/t3", headers=auth, json={"org": "b"})
    assert put.status_code == 200
    stats = httpx.get(
        f"{server.url}/v1/tours/t3/stats", headers={"Authorization": f"Bearer {b_token}"}
    )
    assert stats.json()["totals"]["views"] == 0
    report = httpx.get(f"{server.url}/v1/admin/abuse", headers=auth).json()
    assert report["top_tours"] == []
    assert server.terminate() == 0


def test_tokens_are_listed_without_the_token_and_revoked_at_once(
    data_dir: Path, start: StartServer
) -> None:
    ok(data_dir, "tours", "add", "t1", "--org", "acme")
    ok(data_dir, "tours", "add", "t2", "--org", "acme")
    owner = ok(data_dir, "tokens", "create", "--org", "acme").strip()
    link = ok(data_dir, "tokens", "create", "--org", "acme", "--tour", "t1").strip()
    refused = run(data_dir, "tokens", "create", "--org", "other", "--tour", "t1")
    assert refused.returncode == 1 and len(refused.stderr.splitlines()) == 1
    server = start(data_dir)
    auth = {"Authorization": f"Bearer {link}"}
    assert httpx.get(f"{server.url}/v1/tours/t1/stats", headers=auth).status_code == 200
    assert httpx.get(f"{server.url}/v1/tours/t2/stats", headers=auth).status_code == 404
    listed = httpx.get(f"{server.url}/v1/tours", headers=auth).json()["tours"]
    assert [t["tour"] for t in listed] == ["t1"]

    tokens = orjson.loads(ok(data_dir, "tokens", "list", "--format", "json"))
    assert [(t["org"], t["admin"], t["tour"]) for t in tokens] == [
        ("acme", False, None), ("acme", False, "t1")
    ]  # fmt: skip
    assert tokens[1]["last_used"] is not None and tokens[0]["last_used"] is None
    table = ok(data_dir, "tokens", "list")
    assert owner not in table and link not in table and tokens[1]["id"] in table
    assert ok(data_dir, "tokens", "revoke", tokens[1]["id"]) == f"revoked {tokens[1]['id']}\n"
    assert httpx.get(f"{server.url}/v1/tours/t1/stats", headers=auth).status_code == 401
    unknown = run(data_dir, "tokens", "revoke", "000000000000")
    assert unknown.returncode == 1 and len(unknown.stderr.splitlines()) == 1
    malformed = run(data_dir, "tokens", "revoke", "../tours/t1")
    assert malformed.returncode == 1 and "12 hex" in malformed.stderr
    assert server.terminate() == 0


def test_a_server_file_naming_a_live_process_that_is_not_our_server_is_ignored(
    data_dir: Path, start: StartServer
) -> None:
    ok(data_dir, "tours", "add", "t1", "--org", "acme")
    with socket.socket() as other:  # a live process (this one) at a port no server answers
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        fake = {"url": f"http://127.0.0.1:{port}", "pid": os.getpid(), "instance": "0" * 32}
        (data_dir / "server.json").write_bytes(orjson.dumps(fake))
        assert "t1" in ok(data_dir, "tours", "list")
    server = start(data_dir)  # and another server's nonce is not this one's
    info = orjson.loads((data_dir / "server.json").read_bytes())
    assert httpx.get(f"{server.url}/healthz").json()["instance"] == info["instance"]
    assert "t1" in ok(data_dir, "tours", "list")  # through the server
    (data_dir / "server.json").write_bytes(orjson.dumps(info | {"instance": "1" * 32}))
    stale = run(data_dir, "tours", "list")  # not ours: the file is locked by the server
    assert stale.returncode == 1 and len(stale.stderr.splitlines()) == 1
    assert server.terminate() == 0


def test_a_quickstart_token_file_left_beside_an_empty_database_is_used(
    data_dir: Path, start: StartServer
) -> None:
    data_dir.mkdir(parents=True)
    token = "tv_" + "A" * 43
    (data_dir / "quickstart-token").write_text(token + "\n")  # a crash before the insert
    server = start(data_dir, "--quickstart")
    assert f"/dashboard#token={token}" in server.output().decode()
    tours = httpx.get(f"{server.url}/v1/tours", headers={"Authorization": f"Bearer {token}"})
    assert tours.status_code == 200
    assert server.terminate() == 0


def test_a_tours_public_counter_is_switched_on_and_off_and_kept_otherwise(data_dir: Path) -> None:
    ok(data_dir, "tours", "add", "t1", "--org", "acme", "--public-counter")
    assert "public counter" in ok(data_dir, "tours", "list")
    ok(data_dir, "tours", "add", "t1", "--org", "acme", "--origin", "https://a.example.com")
    assert "public counter" in ok(data_dir, "tours", "list")  # not given: kept
    ok(data_dir, "tours", "add", "t1", "--org", "acme", "--no-public-counter")
    assert "public counter" not in ok(data_dir, "tours", "list")


def test_durations_read_in_hours_once_there_are_any() -> None:
    from tourviews.cli import _duration

    assert [_duration(s) for s in (5, 245, 3600, 48_393, 48_613_000)] == [
        "5s", "4m05s", "1h00m", "13h26m", "13,503h36m",
    ]  # fmt: skip
