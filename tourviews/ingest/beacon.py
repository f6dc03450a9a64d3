"""Untrusted bytes to a typed ``Beacon``, or a ``BeaconError`` naming the field.

This is the only place a beacon is validated; nothing downstream checks again.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import orjson

from tourviews.ingest.sources import NO_UTM, host_of
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
    referrer: str | None = None  # the referrer's host alone (``host_of``)
    embedded: bool = False  # the tour runs in an iframe
    utm: tuple[str | None, str | None, str | None] = NO_UTM  # source, medium, campaign


KINDS = ("view", "scene", "engage", "action")
MAX_ENGAGED = 1_800  # seconds one engage beacon may report: beacon.js sends at least this often
UTM_FIELDS = ("utm_source", "utm_medium", "utm_campaign")
MAX_UTM = 100  # characters
# Control characters would break a CSV line or a log line that shows a value.
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


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

    referrer, embedded, utm = _acquisition(data)
    if kind == "engage":
        seconds = data.get("seconds")
        # bool is an int to Python: true would be one second
        if type(seconds) is not int or not 1 <= seconds <= MAX_ENGAGED:
            raise BeaconError(
                f"seconds must be a whole number from 1 to {MAX_ENGAGED} for an engage event",
                "seconds",
            )
        return Beacon(tour, visitor.lower(), kind, scene, seconds, None, referrer, embedded, utm)
    if kind == "action":
        name = data.get("name")
        if not isinstance(name, str) or not NAME.fullmatch(name):
            raise BeaconError(
                "name must be 1-64 characters of A-Z a-z 0-9 _ - for an action event", "name"
            )
        return Beacon(tour, visitor.lower(), kind, scene, None, name, referrer, embedded, utm)
    return Beacon(tour, visitor.lower(), kind, scene, None, None, referrer, embedded, utm)


def _acquisition(
    data: dict[str, object],
) -> tuple[str | None, bool, tuple[str | None, str | None, str | None]]:
    """The referrer's host, whether the tour is embedded, and the UTM values. An absent
    field, null and "" all mean "not given"."""
    referrer = data.get("referrer")
    host = None
    if referrer is not None and referrer != "":
        if not isinstance(referrer, str):
            raise BeaconError("referrer must be a URL or a host", "referrer")
        try:
            host = host_of(referrer)
        except ValueError as exc:  # never the value itself: it may hold a path and query
            raise BeaconError(f"referrer: {exc}", "referrer") from None
    embedded = data.get("embedded", False)
    if embedded is None:
        embedded = False
    elif type(embedded) is not bool:
        raise BeaconError("embedded must be true or false", "embedded")
    if "utm_source" not in data and "utm_medium" not in data and "utm_campaign" not in data:
        return host, embedded, NO_UTM
    source, medium, campaign = (_utm(data, name) for name in UTM_FIELDS)
    return host, embedded, (source, medium, campaign)


def _utm(data: dict[str, object], name: str) -> str | None:
    value = data.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > MAX_UTM or CONTROL.search(value):
        raise BeaconError(
            f"{name} must be text of at most {MAX_UTM} characters, without control characters",
            name,
        )
    return value.strip() or None
