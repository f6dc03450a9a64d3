"""``/beacon.js``: the tour page's side of the beacon, served compact."""

from __future__ import annotations

import hashlib
import importlib.resources

from calmjs.parse import es5
from calmjs.parse.unparsers.es5 import minify_print

CONTENT_TYPE = "text/javascript; charset=utf-8"
CACHE_CONTROL = "public, max-age=3600"  # an hour: a fix reaches every page the same day


def compact(source: str) -> bytes:
    """The script without comments and spaces, its local names shortened (calmjs.parse)."""
    return str(minify_print(es5(source), obfuscate=True, obfuscate_globals=False)).encode()


BEACON_JS = compact(importlib.resources.files("ingest").joinpath("static/beacon.js").read_text())
ETAG = '"' + hashlib.sha256(BEACON_JS).hexdigest()[:16] + '"'
