"""The breakdowns of the stats document: one entry each, and the SQL derived from them.

Every reader asks this registry: the stats queries, the time zones' and the rollups'
(what a ``hits`` CTE selects, what is grouped, what a day keeps), the weekly report,
and the dashboard (through ``GET /v1/tours``). Adding a breakdown on a column the
events already have is one entry in ``BREAKDOWNS``; the days whose raw events are kept
are then rolled up again with it (``tourviews.analytics.rollup.pending_days``), and
older days have no rows of it.

A breakdown counts view events, scene events, or visits. Those counting events are
grouped by their ``key``, an SQL expression over an ``events`` row, and kept in the
daily rollups when ``daily``; the recency rows, made from raw events, hold them all.
Those counting visits are cut from the events by ``tourviews.analytics.visits``: the
entry here says how people see them.

The order of ``BREAKDOWNS`` is the order people see them in: the dashboard, the weekly
report, the stats document and the command line's table.

A breakdown marked ``geoip`` (countries) is counted and rolled up like any other, but
shown (``shown``) only while the data directory's server looks countries up: ``serve
--geoip`` records that in ``meta`` at start, so a command reading the directory without
the server (``tourviews stats``) shows what the server would. Without it the breakdown
is absent from the stats document and from ``GET /v1/tours``, not a column of unknowns.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

import duckdb

from tourviews.storage.database import read_meta

Counts = Literal["view", "scene", "visit"]

NAME = re.compile(r"[a-z][a-z0-9_]*")
# Names the queries already give a meaning: the columns of ``hits``, the parts of the
# document that are no breakdown, and the visit rows' dimensions in the same rollups.
RESERVED = frozenset(("ts", "kind", "visitor", "tour", "label", "total", "hour", "series",
                      "visits", "engaged", "scenes", "entry", "exit", "transition",
                      "scene_engaged", "began", "began_engaged"))  # fmt: skip


@dataclass(frozen=True, slots=True)
class Column:
    """A number a breakdown's rows show beside the key."""

    field: str  # in each row of the stats document
    heading: str
    kind: Literal["count", "seconds"] = "count"
    # The part of the visit rows that gives it per key, for a breakdown counting events
    # (None: the events counted, as views or visitors).
    visits: str | None = None


COUNTS = (Column("views", "views"), Column("visitors", "visitors"))
UNKNOWN_COUNTRY = "(unknown)"  # the country row of views whose address has none (--geoip)
VISITS = (Column("visits", "visits"),)


@dataclass(frozen=True, slots=True)
class Breakdown:
    """One breakdown: where the document holds it, what it counts, how people see it."""

    name: str  # its key in the stats document's ``breakdown`` (and ``dimension`` in rollups)
    title: str  # "Devices"
    heading: str  # of the key column
    columns: tuple[Column, ...]  # the first ranks the rows
    counts: Counts
    key: str = ""  # SQL over an events row; none for one counting visits
    daily: bool = True  # kept in the daily rollups, so it outlives the raw events
    report: str | None = None  # its title in the weekly report (None: not in it)
    top: int | None = None  # the dashboard shows this many rows at most (None: all)
    geoip: bool = False  # shown only while the server looks countries up (``shown``)
    # For a breakdown counting visits: an aggregate over one visit's events, true when
    # the visit counts under the key ``{value}`` (a bound parameter); empty: no filter
    # by it. One counting events needs none: ``matches`` derives it from the key.
    visit_match: str = ""

    def __post_init__(self) -> None:
        if not NAME.fullmatch(self.name) or self.name in RESERVED:
            raise ValueError(f"breakdown name {self.name!r}: lowercase, and not one of "
                             f"{', '.join(sorted(RESERVED))}")  # fmt: skip
        if bool(self.key) == (self.counts == "visit"):
            raise ValueError(f"breakdown {self.name}: a key for events counted, none for visits")
        if self.counts == "visit" and not self.daily:
            raise ValueError(f"breakdown {self.name}: the visits' rows are all kept daily")
        if not self.columns:
            raise ValueError(f"breakdown {self.name}: no column to show")

    @property
    def grouped(self) -> str:
        """The key as the queries group by it: text, and '' for an event without one, so
        that each event counts once in each breakdown of its kind (and the rollups' keys
        are never NULL)."""
        return f"coalesce(({self.key})::VARCHAR, '')"

    @property
    def filterable(self) -> bool:
        """Whether reads can be filtered by a key of it (``filter=NAME:KEY``)."""
        return self.counts != "visit" or bool(self.visit_match)

    def matches(self, value: str) -> str:
        """An aggregate over one visit's events: true when the visit counts under the key
        ``value`` (an SQL parameter, never the key's text). A breakdown counting events
        matches a visit with one such event: the visit's view for a breakdown of views."""
        if self.counts == "visit":
            return self.visit_match.replace("{value}", value)
        return f"bool_or({self.counted_as(value)})"

    def counted_as(self, value: str) -> str:
        """For a breakdown counting events: true of an event it counts under ``value``."""
        return f"kind = '{self.counts}' AND {self.grouped} = {value}"

    def listed(self) -> dict[str, Any]:
        """The breakdown as ``GET /v1/tours`` lists it for the dashboard."""
        columns = [{"field": c.field, "heading": c.heading, "kind": c.kind} for c in self.columns]
        return {"name": self.name, "title": self.title, "heading": self.heading,
                "columns": columns, "top": self.top, "filter": self.filterable}  # fmt: skip


# A visit's path of scenes, as ``tourviews.analytics.visits`` orders it: its view's scene,
# then its scene events (at the same moment, by name); arg_min gives its first scene.
PATH = (
    "CASE WHEN kind IN ('view', 'scene') THEN scene END, "
    "CASE WHEN kind IN ('view', 'scene') AND scene IS NOT NULL "
    "THEN {'ts': ts, 'later': kind <> 'view', 'scene': scene} END"
)

BREAKDOWNS: tuple[Breakdown, ...] = (
    Breakdown("scene", "Scenes", "scene",
              (*COUNTS, Column("engaged_seconds", "engaged", "seconds", visits="scene_engaged")),
              "scene", "scene", report="Most viewed scenes"),
    Breakdown("entry_scene", "Where visits began", "scene", VISITS, "visit",
              report="Where visits began", visit_match=f"arg_min({PATH}) = {{value}}"),
    Breakdown("exit_scene", "Where visits ended", "scene", VISITS, "visit",
              report="Where visits ended", visit_match=f"arg_max({PATH}) = {{value}}"),
    # the document's own ``transitions``: rows of from and to, not of a key
    Breakdown("transitions", "Paths between scenes", "from → to", VISITS, "visit", top=10),
    Breakdown("action", "Actions", "action", (Column("count", "times"), COUNTS[1]), "visit",
              report="Actions", visit_match="bool_or(kind = 'action' AND action = {value})"),
    # Where views came from (tourviews.ingest.sources): views stored before it, and those
    # without the beacon field, are direct; values past a tour's bound are "(other)".
    Breakdown("source", "Sources", "source", COUNTS, "view", "coalesce(source, '(direct)')",
              report="Where views came from"),
    Breakdown("channel", "Channels", "channel", COUNTS, "view", "coalesce(channel, 'direct')"),
    Breakdown("utm_source", "Campaign sources", "utm_source", COUNTS, "view",
              "coalesce(utm_source, '(none)')"),
    Breakdown("utm_medium", "Campaign media", "utm_medium", COUNTS, "view",
              "coalesce(utm_medium, '(none)')"),
    Breakdown("utm_campaign", "Campaigns", "utm_campaign", COUNTS, "view",
              "coalesce(utm_campaign, '(none)')", report="Campaigns"),
    Breakdown("device", "Devices", "device", COUNTS, "view", "device"),
    Breakdown("browser", "Browsers", "browser", COUNTS, "view", "browser"),
    Breakdown("os", "Operating systems", "OS", COUNTS, "view", "os"),
    # an address with no country in the database (private, loopback, unlisted) is one row
    Breakdown("country", "Countries", "country", COUNTS, "view",
              f"coalesce(country, '{UNKNOWN_COUNTRY}')", report="Countries", geoip=True),
)  # fmt: skip


def registered() -> tuple[Breakdown, ...]:
    """Every breakdown, in the order people see them; read at each call, never copied."""
    names = [b.name for b in BREAKDOWNS]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise ValueError(f"breakdowns registered twice: {', '.join(twice)}")
    return BREAKDOWNS


# meta: "on" while the server last started with --geoip (tourviews.service writes it)
GEOIP = "geoip"


def with_geoip(cursor: duckdb.DuckDBPyConnection) -> bool:
    """Whether the data directory's server looks countries up (its last start said so)."""
    return read_meta(cursor, GEOIP) == "on"


def shown(geoip: bool) -> tuple[Breakdown, ...]:
    """The breakdowns people see, in order: those marked ``geoip`` only with ``geoip``."""
    return tuple(b for b in registered() if geoip or not b.geoip)


def counted() -> tuple[Breakdown, ...]:
    """The breakdowns counting events, grouped by their key."""
    return tuple(b for b in registered() if b.counts != "visit")


def filterable() -> tuple[Breakdown, ...]:
    """The breakdowns a read can be filtered by, in the order people see them."""
    return tuple(b for b in registered() if b.filterable)


def rolled_up() -> tuple[Breakdown, ...]:
    """The breakdowns counting events that the daily rollups keep."""
    return tuple(b for b in counted() if b.daily)


def reported() -> tuple[Breakdown, ...]:
    """The breakdowns of the weekly report, in its order."""
    return tuple(b for b in registered() if b.report is not None)


def quoted(names: Iterable[str]) -> str:
    """Names as an SQL list of strings (``'total', 'device'``); names are checked lowercase."""
    return ", ".join(f"'{name}'" for name in names)


def key_columns(breakdowns: Iterable[Breakdown]) -> str:
    """Each breakdown's key over ``events`` under its name, for a ``hits`` CTE."""
    return ", ".join(f"{b.grouped} AS {b.name}" for b in breakdowns)


Part = tuple[str, str, str]  # (part of the document, key expression, event kind counted)
TOTAL: Part = ("total", "''", "view")


def parts(breakdowns: Iterable[Breakdown]) -> list[Part]:
    """The parts of ``groupings`` of each breakdown: a ``hits`` CTE holds the keys under
    the breakdowns' names (``key_columns``)."""
    return [(b.name, b.name, b.counts) for b in breakdowns]


def groupings(parts: Iterable[Part], by: str = "", ids: bool = False) -> str:
    """One grouping of ``hits`` per part, unioned: rows of (by..., part, key, views, visitors);
    ``ids``: the visitors' IDs, to be merged with sketches, rather than their count."""
    columns = f"{by}, " if by else ""
    visitors = "list(DISTINCT visitor)" if ids else "count(DISTINCT visitor)"
    return "\nUNION ALL\n".join(
        f"SELECT {columns}'{part}', {key}, count(*), {visitors} "
        f"FROM hits WHERE kind = '{kind}' GROUP BY ALL"
        for part, key, kind in parts
    )


def keys(view_extra: str = "") -> str:
    """The (part, key) pairs an event counts in, as a list to unnest: a view in the total
    and each breakdown of views (and ``view_extra``), a scene event in each of scenes."""

    def pairs(kind: str) -> list[str]:
        of = [TOTAL[:2]] if kind == "view" else []
        of += [(b.name, b.grouped) for b in counted() if b.counts == kind]
        return [f"{{'part': '{part}', 'key': {key}}}" for part, key in of]

    views = ", ".join([*pairs("view"), *([view_extra] if view_extra else [])])
    return f"CASE kind WHEN 'view' THEN [{views}] ELSE [{', '.join(pairs('scene'))}] END"
