"""Matomo's YAML tables (shipped inside device-detector), parsed once per installed version.

PyYAML builds every node of ``mobiles.yml`` in Python: about a second, which every
server, ``--workers`` child and test server paid at start. A parsed table is kept as
JSON in the user's cache directory (``$XDG_CACHE_HOME/tourviews``, else
``~/.cache/tourviews``), named by the file and device-detector's version, and read back
with orjson in milliseconds. The tables are public patterns, nothing of any visitor.

A cache that cannot be read, parsed or written is left alone: the YAML is parsed as
before. A file is written whole under a temporary name and then linked to its own, so
a reader never sees half of one.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import os
import tempfile
from importlib.metadata import version
from pathlib import Path
from typing import Any

import orjson
import yaml

FORMAT = 1  # bump when what is kept of a table changes


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "tourviews"


def matomo_table(name: str) -> Any:
    """The parsed YAML file ``regexes/upstream/NAME`` of device-detector."""
    key = f"{name}|{version('device-detector')}|{FORMAT}"
    kept = cache_dir() / f"matomo-{hashlib.sha256(key.encode()).hexdigest()[:16]}.json"
    try:
        return orjson.loads(kept.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        pass
    text = importlib.resources.files("device_detector").joinpath(f"regexes/upstream/{name}")
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    # JSON's keys are text: a maker named 3Q is "3Q" either way, and one named 360 is only
    # ever iterated over, never looked up by its key.
    table = orjson.loads(orjson.dumps(yaml.load(text.read_text(), Loader=loader),
                                      option=orjson.OPT_NON_STR_KEYS))  # fmt: skip
    try:
        kept.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=kept.parent, suffix=".tmp") as out:
            out.write(orjson.dumps(table))
            out.flush()
            os.link(out.name, kept)  # whole or not at all; the temporary name goes either way
    except OSError:
        pass  # kept by another process first, or read-only or full: parsed again next time
    return table
