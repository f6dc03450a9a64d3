"""A real server whose wall clock steps, as NTP or a migrated VM would make it (libfaketime).

The server runs under Debian's libfaketime, which moves the wall clock
(``CLOCK_REALTIME``) by the offset written in a file, read again at every call, and
leaves the monotonic clock alone, as a real step does.
"""

from __future__ import annotations

import glob
import time
import uuid
from pathlib import Path

import httpx
import orjson
import pytest

from tests.conftest import CHROME, StartServer, register
from tests.tourviews.test_cli import ok

LIBRARY = "/usr/lib/*/faketime/libfaketimeMT.so.1"


def faketime(offset_file: Path) -> dict[str, str]:
    found = glob.glob(LIBRARY)
    if not found:
        pytest.fail("libfaketime is missing: apt-get install faketime (see .ci/run)")
    return {
        "LD_PRELOAD": found[0],
        "FAKETIME_TIMESTAMP_FILE": str(offset_file),
        "FAKETIME_NO_CACHE": "1",  # a cached offset outlived the step under load
        "FAKETIME_DONT_FAKE_MONOTONIC": "1",
    }


def step(offset_file: Path, offset: str) -> None:
    partial = offset_file.with_suffix(".tmp")  # whole or not at all, for the reader
    partial.write_text(f"{offset}\n")
    partial.replace(offset_file)


def send(url: str, address: str) -> int:
    body = orjson.dumps({"tour": "t1", "visitor": str(uuid.uuid4())})
    headers = {"Content-Type": "text/plain", "User-Agent": CHROME, "X-Forwarded-For": address}
    return httpx.post(f"{url}/v1/beacon", content=body, headers=headers).status_code


def test_a_step_forward_and_back_locks_no_one_out_and_loses_no_view(
    data_dir: Path, start: StartServer, tmp_path: Path
) -> None:
    register(data_dir)
    token = ok(data_dir, "tokens", "create", "--org", "acme").strip()
    offset = tmp_path / "offset"
    offset.write_text("+0\n")
    server = start(data_dir, "--trusted-proxy", "127.0.0.1/32", env=faketime(offset))
    today = time.strftime("%Y-%m-%d", time.gmtime())

    assert send(server.url, "198.51.100.1") == 204
    step(offset, "+3d")
    # The tour's limit is charged three days ahead; on wall time it would lock the tour.
    assert [send(server.url, "198.51.100.2") for _ in range(5)] == [204] * 5
    step(offset, "+0")
    answers = [send(server.url, f"198.51.100.{n}") for n in range(10, 30)]
    assert answers == [204] * 20

    ahead = time.strftime("%Y-%m-%d", time.gmtime(time.time() + 3 * 86400))
    stats = httpx.get(
        f"{server.url}/v1/tours/t1/stats?from={today}&to={ahead}",
        headers={"Authorization": f"Bearer {token}"},
    ).json()
    by_day = {entry["start"][:10]: entry["views"] for entry in stats["series"] if entry["views"]}
    # The first and the twenty after the step back today; the five sent while the clock
    # was ahead are stored where it dated them.
    assert by_day == {today: 21, ahead: 5}
