"""The parts of the stats document, and what the queries that fill them share.

A view counts in the total, the series and its device, browser and OS; a scene event
in its scene. ``Cell`` gathers the views and visitors of one key of one part.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date

import duckdb

from tourviews.analytics.sketch import union_estimate
from tourviews.storage.database import read_meta

DIMENSIONS = ("device", "browser", "os", "scene")

# (part of the document, key expression, event kind counted)
BREAKDOWNS = (
    ("device", "device", "view"),
    ("browser", "browser", "view"),
    ("os", "os", "view"),
    ("scene", "scene", "scene"),
)


def groupings(
    parts: Iterable[tuple[str, str, str]], by: str = "", visitors: str = "count(DISTINCT visitor)"
) -> str:
    """One grouping of ``hits`` per part, unioned: rows of (by..., part, key, views, visitors)."""
    columns = f"{by}, " if by else ""
    return "\nUNION ALL\n".join(
        f"SELECT {columns}'{part}', {key}, count(*), {visitors} "
        f"FROM hits WHERE kind = '{kind}' GROUP BY ALL"
        for part, key, kind in parts
    )


# The parts whose visitors are distinct over the whole period (a series bucket is
# exact on its own): (part, key expression, event kind counted).
KEYED = (("total", "''", "view"), *BREAKDOWNS)


def keys(view_extra: str = "") -> str:
    """The (part, key) pairs an event counts in, as a list to unnest: a view in the total,
    its device, browser and OS (and ``view_extra``), a scene event in its scene."""

    def pairs(kind: str) -> list[str]:
        return [f"{{'part': '{part}', 'key': {key}}}" for part, key, of in KEYED if of == kind]

    views = ", ".join([*pairs("view"), *([view_extra] if view_extra else [])])
    return f"CASE kind WHEN 'view' THEN [{views}] ELSE [{', '.join(pairs('scene'))}] END"


RAW_FROM = "raw_from"  # meta key: the first day whose raw events are all kept
EPOCH = date(1970, 1, 1)


def raw_from(cursor: duckdb.DuckDBPyConnection) -> date:
    """Days before this one have had their raw events purged: only rollups answer for them."""
    value = read_meta(cursor, RAW_FROM)
    return date.fromisoformat(value) if value else EPOCH


@dataclass
class Cell:
    """Views and visitors of one key, gathered from raw events and from rollups."""

    views: int = 0
    visitors: int = 0  # exact while the cell has a single source
    sources: int = 0
    sketches: list[bytes] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)
    estimated: bool = False  # some visitors are known by a sketch alone

    def add(self, views: int, visitors: int, sketch: bytes | None, ids: list[str]) -> None:
        self.views += views
        self.visitors = visitors
        self.sources += 1
        self.ids += ids
        if sketch is not None:
            self.sketches.append(sketch)

    def add_sketch(self, views: int, sketch: bytes | None) -> None:
        """Views and visitors of a 15-minute bucket (``quarters``): its visitors by sketch."""
        self.views += views
        self.sources += 1
        self.estimated = True
        if sketch is not None:
            self.sketches.append(sketch)

    @property
    def exact(self) -> bool:
        return self.sources <= 1 and not self.estimated

    def distinct(self) -> int:
        return self.visitors if self.exact else union_estimate(self.sketches, self.ids)


def day_key(day: date, hour: str = "00") -> str:
    """The series key of ``day`` (or of one of its hours)."""
    return f"{day.isoformat()}T{hour}:00:00Z"


Series = dict[str, tuple[int, int]]  # bucket start -> (views, visitors)
Cells = dict[tuple[str, str], Cell]  # (part, key) -> its views and visitors
