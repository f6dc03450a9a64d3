"""Untrusted bytes to a typed ``Beacon``, or a ``BeaconError`` naming the field.

This is the only place a beacon is validated; nothing downstream checks again.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import orjson

from tourviews.storage.registry import NAME

MAX_BYTES = 2_048
# A random (version 4) UUID, as crypto.randomUUID() makes. The server cannot tell
# random bits from chosen ones, but the form refuses IDs made of text (any 32 hex
# digits could spell an e-mail address in full) and makes crafting one deliberate.
RANDOM_UUID = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-4[0-9a-fA-F]{3}-[89abAB][0-9a-fA-F]{3}-[0-9a-fA-F]{12}"
)


class BeaconError(ValueError):
    """The body is not a valid beacon; ``field`` names the culprit (None: the body as a whole)."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


@dataclass(frozen=True, slots=True)
class Beacon:
    tour: str
    visitor: str  # canonical lower-case UUID
    kind: str  # 'view' | 'scene' | 'engage' | 'action'
    scene: str | None
    seconds: int | None = None  # an engage beacon's visible seconds
    action: str | None = None  # an action beacon's name


KINDS = ("view", "scene", "engage", "action")
MAX_ENGAGED = 1_800  # seconds one engage beacon may report: beacon.js sends at least this often


def parse_beacon(body: bytes) -> Beacon:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise BeaconError("body is not valid JSON") from None
    if not isinstance(data, dict):
        raise BeaconError("body must be a JSON object")

    tour = data.get("tour")
    if tour is None:
        raise BeaconError("tour is required", "tour")
    if not isinstance(tour, str) or not NAME.fullmatch(tour):
        raise BeaconError("tour must be 1-64 characters of A-Z a-z 0-9 _ -", "tour")

    visitor = data.get("visitor")
    if visitor is None:
        raise BeaconError("visitor is required", "visitor")
    if not isinstance(visitor, str) or not RANDOM_UUID.fullmatch(visitor):
        raise BeaconError("visitor must be a random (version 4) UUID in 8-4-4-4-12 form", "visitor")

    kind = data.get("event", "view")
    if kind not in KINDS:
        raise BeaconError("event must be 'view', 'scene', 'engage' or 'action'", "event")

    scene = data.get("scene")
    if scene is None:
        if kind == "scene":
            raise BeaconError("scene is required when event is 'scene'", "scene")
    elif not isinstance(scene, str) or not NAME.fullmatch(scene):
        raise BeaconError("scene must be 1-64 characters of A-Z a-z 0-9 _ -", "scene")

    if kind == "engage":
        seconds = data.get("seconds")
        # bool is an int to Python: true would be one second
        if type(seconds) is not int or not 1 <= seconds <= MAX_ENGAGED:
            raise BeaconError(
                f"seconds must be a whole number from 1 to {MAX_ENGAGED} for an engage event",
                "seconds",
            )
        return Beacon(tour, visitor.lower(), kind, scene, seconds=seconds)
    if kind == "action":
        name = data.get("name")
        if not isinstance(name, str) or not NAME.fullmatch(name):
            raise BeaconError(
                "name must be 1-64 characters of A-Z a-z 0-9 _ - for an action event", "name"
            )
        return Beacon(tour, visitor.lower(), kind, scene, action=name)
    return Beacon(tour, visitor.lower(), kind, scene)
