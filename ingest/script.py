"""``/beacon.js``: the tour page's side of the beacon, served compact."""

from __future__ import annotations

import hashlib
import importlib.resources

CONTENT_TYPE = "text/javascript; charset=utf-8"
CACHE_CONTROL = "public, max-age=3600"  # an hour: a fix reaches every page the same day


def compact(source: str) -> bytes:
    """Drop indentation, blank lines and block-comment lines (it has no multi-line strings)."""
    lines = (line.strip() for line in source.splitlines())
    return "\n".join(line for line in lines if line and not line.startswith("/*")).encode()


BEACON_JS = compact(importlib.resources.files("ingest").joinpath("static/beacon.js").read_text())
ETAG = '"' + hashlib.sha256(BEACON_JS).hexdigest()[:16] + '"'
