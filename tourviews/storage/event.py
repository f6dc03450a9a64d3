"""The counted event: one record, and the forms it takes in DuckDB, Arrow and the stream.

A counted beacon becomes one ``Event``. Each field states its Python type and, in a
``Column``, its DuckDB type and constraint, its Arrow type and its meaning. From them
come the ``events`` table (``CREATE_TABLE``), the writer's Arrow schema
(``arrow_schema``), the select list that reads rows back as events (``COLUMNS``) and
the Redis stream's form (``encode``, ``decode``). ``Event`` is a tuple in the table's
column order, so DuckDB's appender and ``pa.array`` take it as it is.

A new field goes last, with a default: the writer inserts by position, and a database
made before gains the column at the end (a migration in ``tourviews.storage.database``).
Stream rows of a node not upgraded yet are then one field short, and still decode.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from types import NoneType
from typing import TYPE_CHECKING, Annotated, Any, NamedTuple, get_args, get_type_hints

import orjson

if TYPE_CHECKING:
    import pyarrow as pa


@dataclass(frozen=True)
class Column:
    """An event field's column of ``events``."""

    sql: str  # DuckDB type and constraint
    arrow: str  # Arrow type, by pyarrow's name for it (pyarrow.type_for_alias)
    meaning: str


class Event(NamedTuple):
    """One counted beacon: a row of ``events``, an entry of the Redis stream."""

    ts: Annotated[datetime, Column("TIMESTAMP NOT NULL", "timestamp[us]", "server time, UTC")]
    tour: Annotated[str, Column("VARCHAR NOT NULL", "string", "the tour's name")]
    kind: Annotated[
        str, Column("VARCHAR NOT NULL", "string", "'view' | 'scene' | 'engage' | 'action'")
    ]
    scene: Annotated[
        str | None, Column("VARCHAR", "string", "required for 'scene', optional for the others")
    ]
    visitor: Annotated[str, Column("UUID NOT NULL", "string", "the page's random visitor ID")]
    ip_hash: Annotated[
        bytes, Column("BLOB NOT NULL", "binary", "16 bytes of HMAC-SHA256 under the day's salt")
    ]
    device: Annotated[
        str, Column("VARCHAR NOT NULL", "string", "desktop | mobile | tablet | bot | other")
    ]
    browser: Annotated[str, Column("VARCHAR NOT NULL", "string", "the browser's family")]
    os: Annotated[str, Column("VARCHAR NOT NULL", "string", "the operating system's family")]
    seconds: Annotated[
        int | None, Column("INTEGER", "int32", "'engage': visible seconds since the last one")
    ]
    action: Annotated[str | None, Column("VARCHAR", "string", "'action': its name")]
    country: Annotated[
        str | None,
        Column("VARCHAR", "string", "ISO 3166-1 alpha-2 of the address (--geoip), or NULL"),
    ] = None
    # Where a view came from (NULL for the other events, and for views stored before).
    source: Annotated[
        str | None, Column("VARCHAR", "string", "'view': its referrer's host, or (other)")
    ] = None
    channel: Annotated[
        str | None, Column("VARCHAR", "string", "'view': direct | internal | embed | ...")
    ] = None
    utm_source: Annotated[str | None, Column("VARCHAR", "string", "'view': or (other)")] = None
    utm_medium: Annotated[str | None, Column("VARCHAR", "string", "'view': or (other)")] = None
    utm_campaign: Annotated[str | None, Column("VARCHAR", "string", "'view': or (other)")] = None


def _fields() -> list[tuple[str, Any, Column]]:
    """Each field's name, Python type and column, in order."""
    hints = get_type_hints(Event, include_extras=True)
    fields = []
    for name in Event._fields:
        kind, *extras = get_args(hints[name]) or (hints[name],)
        columns = [extra for extra in extras if isinstance(extra, Column)]
        if len(columns) != 1:
            raise TypeError(f"Event.{name} wants one Column: Annotated[type, Column(...)]")
        fields.append((name, kind, columns[0]))
    return fields


_FIELDS = _fields()


def _create_table() -> str:
    lines = []
    for number, (name, _, column) in enumerate(_FIELDS, 1):
        definition = f"    {name} {column.sql}{',' if number < len(_FIELDS) else ''}"
        lines.append(f"{definition:<38} -- {column.meaning}")
    return "CREATE TABLE IF NOT EXISTS events (\n" + "\n".join(lines) + "\n);"


CREATE_TABLE = _create_table()

# DuckDB gives a UUID back as uuid.UUID: read as text, a row equals the Event written.
COLUMNS = ", ".join(
    f"{name}::VARCHAR AS {name}" if column.sql.startswith("UUID") else name
    for name, _, column in _FIELDS
)


def arrow_schema() -> pa.Schema:
    """The Arrow schema of a batch of events, as the writer inserts it."""
    # Imported here, not with the module: a front worker imports this module but
    # writes nothing, and need not load pyarrow.
    import pyarrow as pa

    return pa.schema([(name, pa.type_for_alias(column.arrow)) for name, _, column in _FIELDS])


class _JsonForm(NamedTuple):
    dump: Callable[[Any], Any]
    load: Callable[[Any], Any]


# JSON has no times and no bytes: the stream carries them as ISO text and as hex.
_JSON_FORMS = {
    datetime: _JsonForm(datetime.isoformat, datetime.fromisoformat),
    bytes: _JsonForm(bytes.hex, bytes.fromhex),
}


def _json_forms() -> list[tuple[int, _JsonForm]]:
    """(position, form) of the fields that JSON does not carry as they are. A
    ``T | None`` field takes T's form, with None kept as None."""
    found = []
    for position, (_, kind, _) in enumerate(_FIELDS):
        optional = NoneType in get_args(kind)
        base = next(t for t in get_args(kind) if t is not NoneType) if optional else kind
        if (form := _JSON_FORMS.get(base)) is not None:
            found.append((position, _JsonForm(*map(_or_none, form)) if optional else form))
    return found


def _or_none(convert: Callable[[Any], Any]) -> Callable[[Any], Any]:
    return lambda value: None if value is None else convert(value)


_DUMPS = tuple((position, form.dump) for position, form in _json_forms())
_LOADS = tuple((position, form.load) for position, form in _json_forms())


def encode(event: Event) -> bytes:
    """The event as a row of the Redis stream: a JSON array in the fields' order."""
    values: list[Any] = list(event)
    for position, convert in _DUMPS:
        values[position] = convert(values[position])
    return orjson.dumps(values)


def decode(row: bytes) -> Event:
    """The event a stream row holds (``encode``'s form, or one that lacks fields with
    a default). Raises ``ValueError`` or ``TypeError`` for a row that is not one."""
    values = orjson.loads(row)
    if not isinstance(values, list) or len(values) > len(_FIELDS):
        raise ValueError(f"not a row of {len(_FIELDS)} event fields: {row[:100]!r}")
    for position, convert in _LOADS:
        if position < len(values):
            values[position] = convert(values[position])
    return Event(*values)
