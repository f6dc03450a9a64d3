"""A breakdown of the stats document as CSV: a row per key, its columns as registered.

The columns come from the breakdown's entry in ``tourviews.analytics.breakdowns``, so
a breakdown registered there is exported with nothing added here. The paths between
scenes, the document's own ``transitions``, have ``from`` and ``to`` for a key.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from tourviews.analytics.breakdowns import Breakdown, shown
from tourviews.storage.errors import InvalidValue

TRANSITIONS = "transitions"  # not in the document's ``breakdown``, a list of its own


def exported(name: str, geoip: bool) -> Breakdown:
    """The breakdown called ``name`` among those shown (countries only with ``geoip``);
    ``InvalidValue`` naming ``breakdown`` if none is."""
    for breakdown in shown(geoip):
        if breakdown.name == name:
            return breakdown
    names = ", ".join(b.name for b in shown(geoip))
    raise InvalidValue("breakdown", f"breakdown must be one of {names}")


def breakdown_csv(document: dict[str, Any], breakdown: Breakdown) -> str:
    """The rows of ``breakdown`` in a stats document as CSV, a header line first."""
    keys = ["from", "to"] if breakdown.name == TRANSITIONS else ["key"]
    schema: dict[str, type[pl.DataType]] = {key: pl.String for key in keys}
    for column in breakdown.columns:
        # counts and seconds are whole; a kind added later (a share) may not be
        whole = column.kind in ("count", "seconds")
        schema[column.field] = pl.Int64 if whole else pl.Float64
    if breakdown.name == TRANSITIONS:
        rows = document[TRANSITIONS]
    else:
        rows = document["breakdown"].get(breakdown.name, [])
    table = [{field: row.get(field) for field in schema} for row in rows]
    return pl.DataFrame(table, schema=schema).write_csv()
