"""Values the tests build, by name: each test says only what matters to it."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from tourviews.storage.event import Event

AT = datetime(2026, 11, 24, 12, 0)  # an event's time unless a test gives one (UTC, naive)

_EVENT = {"ts": AT, "tour": "t1", "kind": "view", "scene": None, "ip_hash": bytes(16),
          "device": "desktop", "browser": "Chrome", "os": "Windows", "seconds": None,
          "action": None}  # fmt: skip


# The columns of events a row written by hand in SQL gives; those after them are NULL.
SQL_COLUMNS = "ts, tour, kind, scene, visitor, ip_hash, device, browser, os, seconds, action"


def event(**fields: Any) -> Event:
    """A counted view of tour "t1" at ``AT`` by a new random visitor, on desktop Chrome
    under Windows, with an all-zero 16-byte IP hash; ``fields`` replace any of that."""
    return Event(**(_EVENT | {"visitor": str(uuid.uuid4())} | fields))
