"""Reads while an operator changes tours: never a 500 (a real server, real threads)."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

from tests.abuse.conftest import register
from tests.conftest import ServerProcess, StartServer

SECONDS = 3.0


def test_listing_tours_while_an_admin_deletes_and_adds_them_never_fails(
    tmp_path: Path, start: StartServer
) -> None:
    data_dir = tmp_path / "data"
    register(data_dir)
    token = subprocess.run(
        [sys.executable, "-m", "tourviews", "tokens", "create", "--org", "acme", "--admin",
         "--data", str(data_dir)],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    server: ServerProcess = start(data_dir)
    auth = {"Authorization": f"Bearer {token}"}
    stop = threading.Event()

    def churn() -> None:
        with httpx.Client(base_url=server.url, headers=auth) as client:
            while not stop.is_set():
                client.delete("/v1/admin/tours/t1")
                client.put("/v1/admin/tours/t1", json={"org": "acme"})

    changer = threading.Thread(target=churn)
    changer.start()
    statuses = []
    deadline = time.monotonic() + SECONDS
    try:
        with httpx.Client(base_url=server.url, headers=auth) as client:
            while time.monotonic() < deadline:
                statuses.append(client.get("/v1/tours").status_code)
    finally:
        stop.set()
        changer.join(10)
    assert len(statuses) > 20
    assert set(statuses) == {200}
