"""Referrers whose path and query are markers, and a scan for them: what a view keeps of
its referrer is the host alone, in every file and every line of output."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from urllib.parse import quote

import orjson

HOST = "portal.example.kz"
MARK_PATH = "MarkPath4k9z"
MARK_QUERY = "MarkQuery7w2x"
# The same marks where a page would put them, in the forms a browser may send them.
REFERRERS = (
    f"https://www.{HOST}/listing/{MARK_PATH}?ref={MARK_QUERY}#top",
    f"{HOST}/{MARK_PATH}?{MARK_QUERY}=1",
    f"https://user:{MARK_QUERY}@{HOST}:8443/{MARK_PATH}",
)
# Refused (400): the marks must not reach a log line or an error either.
REFUSED = (f"about:{MARK_PATH}?{MARK_QUERY}", f"/{MARK_PATH}?{MARK_QUERY}")


def bodies(tour: str = "t1") -> list[tuple[bytes, int]]:
    """(beacon body, the status it must get): views with the marked referrers, refused
    ones, and scene and engage beacons carrying them (validated, kept by no event)."""

    def body(**fields: object) -> bytes:
        return orjson.dumps({"tour": tour, "visitor": str(uuid.uuid4()), **fields})

    sent = [(body(referrer=referrer, embedded=True), 204) for referrer in REFERRERS]
    sent += [(body(referrer=referrer), 400) for referrer in REFUSED]
    sent += [(body(event="scene", scene="lobby", referrer=REFERRERS[0]), 204)]
    return sent


def markers() -> list[bytes]:
    found = []
    for mark in (MARK_PATH, MARK_QUERY):
        found += [mark.encode(), mark.lower().encode(), quote(mark).encode(),
                  mark.encode("utf-16-le")]  # fmt: skip
    return found


def leaks(blobs: Iterable[tuple[str, bytes]]) -> list[str]:
    """Where any form of a referrer's path or query mark is."""
    return [f"{name}: {marker!r}" for name, blob in blobs for marker in markers() if marker in blob]
