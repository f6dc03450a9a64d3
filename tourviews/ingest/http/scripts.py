"""The tour page's scripts, served compact.

``/beacon.js`` counts views and scenes and carries withdrawal; it stays under 1.5 KB.
``/engage.js``, loaded after it, adds engaged time and actions; ``/counter.js`` fills
a page's public view counters and works alone.
"""

from __future__ import annotations

import hashlib
import importlib.resources
from dataclasses import dataclass

from calmjs.parse import es5
from calmjs.parse.unparsers.es5 import minify_print

CONTENT_TYPE = "text/javascript; charset=utf-8"
CACHE_CONTROL = "public, max-age=3600"  # an hour: a fix reaches every page the same day


def compact(source: str) -> bytes:
    """The script without comments, spaces and the semicolons it can do without, its local
    names shortened (calmjs.parse)."""
    compacted = minify_print(es5(source), obfuscate=True, obfuscate_globals=False, drop_semi=True)
    return str(compacted).encode()


@dataclass(frozen=True)
class Script:
    body: bytes
    etag: str


def _load(name: str) -> Script:
    body = compact(
        importlib.resources.files("tourviews.ingest.http").joinpath(f"static/{name}").read_text()
    )
    return Script(body, '"' + hashlib.sha256(body).hexdigest()[:16] + '"')


SCRIPTS = {name: _load(name) for name in ("beacon.js", "engage.js", "counter.js")}
SUMMARIES = {
    "beacon.js": "The script tour pages embed: views, scenes, withdrawal",
    "engage.js": "Optional, after beacon.js: engaged time and actions",
    "counter.js": "Optional: fills elements marked data-tourviews-counter with a public count",
}
