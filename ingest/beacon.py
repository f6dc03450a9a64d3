"""Untrusted bytes to a typed ``Beacon``, or a ``BeaconError`` naming the field.

This is the only place a beacon is validated; nothing downstream checks again.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import orjson

from storage.registry import NAME

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
    kind: str  # 'view' | 'scene'
    scene: str | None


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
    if kind != "view" and kind != "scene":
        raise BeaconError("event must be 'view' or 'scene'", "event")

    scene = data.get("scene")
    if scene is None:
        if kind == "scene":
            raise BeaconError("scene is required when event is 'scene'", "scene")
    elif not isinstance(scene, str) or not NAME.fullmatch(scene):
        raise BeaconError("scene must be 1-64 characters of A-Z a-z 0-9 _ -", "scene")

    return Beacon(tour, visitor.lower(), kind, scene)
