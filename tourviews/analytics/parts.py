"""What the queries that fill the stats document share.

A view counts in the total, the series and each breakdown of views; a scene event in
each breakdown of scenes (``tourviews.analytics.breakdowns``). ``Cell`` gathers the
views and visitors of one key of one part.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import duckdb

from tourviews.analytics.sketch import union_estimate
from tourviews.storage.database import read_meta

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
