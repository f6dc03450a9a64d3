"""The naive implementation, for comparison: what tourviews would be without its design.

A FastAPI route that validates the beacon with a pydantic model, parses the
user-agent with ``user_agents.parse`` (the legacy pure-``re`` path), hashes the
address, and inserts one row into the same DuckDB ``events`` table in its own
transaction (autocommit: one fsync per request) before answering 204. Same
durability promise, none of the design: no group commit, no lean route, no fast
classifier. Run with ``TOURVIEWS_NAIVE_DATA=<dir> uvicorn benchmarks.naive:app``.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import threading
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, ValidationError
from starlette.concurrency import run_in_threadpool
from user_agents import parse

from tourviews.storage.database import open_database

SALT = secrets.token_bytes(32)
NAME = r"^[A-Za-z0-9_-]{1,64}$"

db = open_database(Path(os.environ.get("TOURVIEWS_NAIVE_DATA", "naive-data")))
local = threading.local()
app = FastAPI()


class Beacon(BaseModel):
    tour: str = Field(pattern=NAME)
    visitor: uuid.UUID
    event: Literal["view", "scene"] = "view"
    scene: str | None = Field(default=None, pattern=NAME)


@app.post("/v1/beacon", status_code=204)
async def beacon(request: Request) -> Response:
    # Beacons come as text/plain (sendBeacon), so the model reads the raw body.
    try:
        body = Beacon.model_validate_json(await request.body())
    except ValidationError as exc:
        return JSONResponse({"error": str(exc.errors()[0]["msg"])}, status_code=400)
    await run_in_threadpool(_insert, body, request)  # the insert blocks: off the loop
    return Response(status_code=204)


def _insert(beacon: Beacon, request: Request) -> None:
    agent = parse(request.headers.get("user-agent", ""))
    address = request.headers.get("x-forwarded-for") or (request.client and request.client.host)
    ip_hash = hmac.new(SALT, str(address).encode(), hashlib.sha256).digest()[:16]
    device = "bot" if agent.is_bot else "mobile" if agent.is_mobile else "desktop"
    cursor = getattr(local, "cursor", None)
    if cursor is None:
        cursor = local.cursor = db.cursor()
    cursor.execute(
        "INSERT INTO events (ts, tour, kind, scene, visitor, ip_hash, device, browser, os) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [datetime.now(UTC).replace(tzinfo=None), beacon.tour, beacon.event, beacon.scene,
         beacon.visitor, ip_hash, device, agent.browser.family, agent.os.family],
    )  # fmt: skip
