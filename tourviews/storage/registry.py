"""Registered tours and access tokens.

Tours are read on every beacon, so the registry keeps them in memory as an
immutable mapping that is swapped whole on each change: readers never lock.
Tokens are random (256 bits), shown once and stored only as their SHA-256.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import re
import secrets
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

import duckdb

from tourviews.storage.clock import Clock
from tourviews.storage.database import Database, mark_changed, mark_erased, one, transaction
from tourviews.storage.errors import Conflict, InvalidValue

NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
ORG = re.compile(r"[A-Za-z0-9_.-]{1,64}")
TOKEN_PREFIX = "tv_"
TOKEN_ID = re.compile(r"[0-9a-fA-F]{12}")  # a token's id: the start of its hash, in hex
LAST_USED_STEP = timedelta(minutes=1)
MAX_DECLARED_SCENES = 10_000
GOAL = re.compile(r"(scene|action):([A-Za-z0-9_-]{1,64})")
MAX_GOALS = 20


@dataclass(frozen=True, slots=True)
class Tour:
    tour: str
    org: str
    origins: tuple[str, ...]  # empty: any origin may embed the tour
    scenes: frozenset[str] | None = None  # declared scenes; None: any, up to --max-scenes
    public_counter: bool = False  # its view count may be read without a token
    timezone: str = "UTC"  # IANA name: the zone of the owner's days and hours
    goals: tuple[str, ...] = ()  # ``scene:NAME`` or ``action:NAME``: what a visit should reach

    def allows(self, origin: str) -> bool:
        return not self.origins or origin.lower() in self.origins

    def document(self) -> dict[str, Any]:
        """The tour as the admin API and the CLI show it."""
        scenes = None if self.scenes is None else sorted(self.scenes)
        return {"tour": self.tour, "org": self.org, "origins": list(self.origins),
                "scenes": scenes, "public_counter": self.public_counter,
                "timezone": self.timezone, "goals": list(self.goals)}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a token speaks for."""

    org: str
    admin: bool
    tour: str | None = None  # a token for one tour reads that tour alone


def check_name(field: str, value: object) -> str:
    """A tour or scene identifier: 1-64 of A-Z a-z 0-9 _ -."""
    if not isinstance(value, str) or not NAME.fullmatch(value):
        raise InvalidValue(field, f"{field} must be 1-64 characters of A-Z a-z 0-9 _ -")
    return value


def check_goals(values: Iterable[object]) -> tuple[str, ...]:
    """A tour's goals, each ``scene:NAME`` or ``action:NAME``, in order, without repeats.

    A ``view`` is no goal: every visit begins with one, so its rate would always be 1.
    """
    goals: list[str] = []
    for value in values:
        if not isinstance(value, str) or not GOAL.fullmatch(value):
            raise InvalidValue(
                "goals", f"a goal is scene:NAME or action:NAME (NAME: 1-64 characters of "
                f"A-Z a-z 0-9 _ -), not {value!r}",
            )  # fmt: skip
        if value not in goals:
            goals.append(value)
    if len(goals) > MAX_GOALS:
        raise InvalidValue("goals", f"a tour has at most {MAX_GOALS} goals")
    return tuple(goals)


def check_token_id(value: str) -> str:
    """A token's id as ``tokens list`` shows it, or an error naming ``id``."""
    if not TOKEN_ID.fullmatch(value):
        raise InvalidValue("id", "a token id is 12 hex characters (tourviews tokens list)")
    return value


def check_org(value: object) -> str:
    if not isinstance(value, str) or not ORG.fullmatch(value):
        raise InvalidValue("org", "org must be 1-64 characters of A-Z a-z 0-9 _ . -")
    return value


def check_origin(value: object) -> str:
    """An origin as browsers write it: scheme://host[:port], no path, no user, the host in
    lower-case ASCII (IDNA), no default port."""
    if not isinstance(value, str) or len(value) > 255:
        raise InvalidValue("origins", "each origin must be a string like https://tours.example.com")
    bad = InvalidValue("origins", f"{value!r} is not an origin like https://tours.example.com")
    try:
        parts = urlsplit(value)
        host = (parts.hostname or "").encode("idna").decode("ascii")
        port = parts.port
    except (UnicodeError, ValueError):  # an unclosed IPv6 bracket, a port past 65535
        raise bad from None
    if (
        parts.scheme not in ("http", "https")
        or not host
        or "@" in parts.netloc
        or parts.path
        or parts.query
    ):
        raise bad
    if ":" in host:
        host = f"[{host}]"
    default = {"http": 80, "https": 443}[parts.scheme]
    return f"{parts.scheme}://{host}" + (f":{port}" if port not in (None, default) else "")


def hash_token(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def new_token() -> str:
    """A token of 256 random bits."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_id(digest: bytes) -> str:
    """What names a token in lists and revocations: 48 bits of its hash, not the token."""
    return digest.hex()[:12]


class Keep:
    """The value a tour already has (``put_tour``'s default for what is not given)."""


KEEP = Keep()


@functools.cache
def _known_zones() -> frozenset[str]:
    return frozenset(available_timezones())


def check_timezone(value: object) -> str:
    """An IANA time zone name that this machine knows (``Asia/Almaty``, ``UTC``)."""
    try:
        # Names browsers know (Intl) too: not "EST" or "posix/Asia/Almaty"
        if (
            not isinstance(value, str)
            or ("/" not in value and value != "UTC")
            or (value not in _known_zones())
        ):
            raise ValueError(value)
        return ZoneInfo(value).key
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise InvalidValue(
            "timezone", f"timezone must be an IANA time zone such as Asia/Almaty or UTC, "
            f"not {value!r}",
        ) from None  # fmt: skip


def _tour(
    tour: str,
    org: str,
    origins: list[str],
    scenes: list[str] | None,
    public: bool | None,
    timezone: str | None,
    goals: list[str] | None = None,
) -> Tour:
    """A tour as stored."""
    return Tour(
        tour,
        org,
        tuple(sorted({check_origin(o) for o in origins})),
        None if scenes is None else frozenset(scenes),
        bool(public),
        timezone or "UTC",
        tuple(goals or ()),
    )


def tour_from_document(document: Mapping[str, Any]) -> Tour:
    """A tour from its ``Tour.document()`` (as the primary publishes it to ingest nodes)."""
    return _tour(document["tour"], document["org"], document["origins"], document["scenes"],
                 document["public_counter"], document["timezone"],
                 document.get("goals"))  # fmt: skip


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat(timespec="seconds") + "Z"


def _delete_history(cursor: Any, tour: str) -> None:
    """Every stored row of a tour but its registration; the file wants compacting if any."""
    row = one(cursor, "DELETE FROM events WHERE tour = ?", [tour])
    for table in ("rollups", "quarters", "recency", "visitor_days", "drops", "drop_log"):
        cursor.execute(f"DELETE FROM {table} WHERE tour = ?", [tour])
    mark_changed(cursor)  # its completed days' figures, kept by readers, are gone too
    if row and row[0]:
        mark_erased(cursor)


class Registry:
    """Tours and tokens of one database."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock
        self._tours: Mapping[str, Tour] = MappingProxyType({})
        self._noting = threading.Lock()  # held while a token's last use is written
        self.reload()

    @property
    def tours(self) -> Mapping[str, Tour]:
        """Every registered tour by its ID (an immutable snapshot)."""
        return self._tours

    def reload(self) -> None:
        with self._db.using() as cursor:
            rows = cursor.execute(
                "SELECT tour, org, origins, scenes, public_counter, timezone, goals FROM tours"
            ).fetchall()
        self._tours = MappingProxyType({row[0]: _tour(*row) for row in rows})

    def put_tour(
        self,
        tour: str,
        org: str,
        origins: Iterable[str] | None = None,
        scenes: Iterable[str] | Keep | None = KEEP,
        move: bool = False,
        public_counter: bool | None = None,
        timezone: str | None = None,
        goals: Iterable[str] | None = None,
    ) -> Tour:
        """Register a tour, or update it; what is not given (None, ``KEEP``) keeps its value.

        An existing tour changes organization only with ``move`` (its history moves with
        it). A tour ID that is not registered starts with no history: anything stored
        under it before (an event committed while the tour was being deleted) goes.
        """
        check_name("tour", tour)
        org = check_org(org)
        if not isinstance(scenes, Keep) and scenes is not None:
            scenes = frozenset(check_name("scenes", scene) for scene in scenes)
            if len(scenes) > MAX_DECLARED_SCENES:
                raise InvalidValue("scenes", f"at most {MAX_DECLARED_SCENES} scenes")
        given = None if origins is None else tuple(sorted({check_origin(o) for o in origins}))
        if timezone is not None:
            timezone = check_timezone(timezone)
        wanted = None if goals is None else check_goals(goals)
        # The tour as stored, read in the transaction that writes it: a change made
        # meanwhile by another request cannot slip between the check and the write.
        with self._db.maintenance, self._db.using() as cursor, transaction(cursor):
            row = one(
                cursor,
                "SELECT org, origins, scenes, public_counter, timezone, goals FROM tours "
                "WHERE tour = ?",
                [tour],
            )
            current = None if row is None else _tour(tour, *row)
            if current is not None and current.org != org and not move:
                raise Conflict(
                    "org", f"tour {tour} belongs to organization {current.org}; "
                    "moving it (with its history) needs --move (API: \"move\": true)",
                )  # fmt: skip
            if isinstance(scenes, Keep):
                declared = current.scenes if current is not None else None
            else:
                declared = scenes
            kept = current.origins if current is not None else ()
            if public_counter is None:
                public_counter = current is not None and current.public_counter
            if timezone is None:
                timezone = "UTC" if current is None else current.timezone
            if wanted is None:
                wanted = () if current is None else current.goals
            entry = Tour(
                tour,
                org,
                kept if given is None else given,
                declared,
                public_counter,
                timezone,
                wanted,
            )
            if current is None:
                _delete_history(cursor, tour)
            cursor.execute(
                "INSERT INTO tours (tour, org, origins, created, scenes, public_counter, timezone, "
                "goals) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (tour) DO UPDATE SET "
                "org = excluded.org, origins = excluded.origins, scenes = excluded.scenes, "
                "public_counter = excluded.public_counter, timezone = excluded.timezone, "
                "goals = excluded.goals",
                [entry.tour, entry.org, list(entry.origins), self._naive_now(),
                 None if declared is None else sorted(declared), public_counter, timezone,
                 list(wanted)],
            )  # fmt: skip
        self.reload()
        return entry

    def delete_tour(self, tour: str) -> bool:
        """Unregister a tour and delete its history. False when it was not registered.

        Its events, rollups and drop counters go, so nothing of it can reach whoever
        registers the ID next; the deleted rows leave the file at the next compaction.
        """
        found = tour in self._tours
        with self._db.maintenance, self._db.using() as cursor, transaction(cursor):
            cursor.execute("DELETE FROM tours WHERE tour = ?", [tour])
            cursor.execute("DELETE FROM tour_reports WHERE tour = ?", [tour])
            _delete_history(cursor, tour)
        self.reload()
        return found

    def report_to(self, tour: str) -> tuple[str, ...]:
        """The addresses ``tour``'s own weekly report goes to (none: it has no report)."""
        with self._db.using() as cursor:
            row = one(cursor, "SELECT recipients FROM tour_reports WHERE tour = ?", [tour])
        return () if row is None else tuple(row[0])

    def set_report_to(self, tour: str, recipients: Iterable[str]) -> tuple[str, ...]:
        """Send ``tour``'s own weekly report to ``recipients`` (checked by the caller)
        from now on; none: no report of its own. ``InvalidValue`` for an unknown tour."""
        chosen = tuple(dict.fromkeys(recipients))  # in the order given, each once
        with self._db.using() as cursor, transaction(cursor):
            if one(cursor, "SELECT 1 FROM tours WHERE tour = ?", [tour]) is None:
                raise InvalidValue("tour", f"unknown tour {tour!r}")
            cursor.execute("DELETE FROM tour_reports WHERE tour = ?", [tour])
            if chosen:
                cursor.execute("INSERT INTO tour_reports VALUES (?, ?)", [tour, list(chosen)])
        return chosen

    def create_token(
        self, org: str, admin: bool = False, tour: str | None = None, token: str | None = None
    ) -> str:
        """A new token for ``org`` (read-only for one tour with ``tour``); shown this once.

        Only its hash is kept. A tour token reads that tour alone, and must name a tour
        of the organization.
        """
        org = check_org(org)
        if tour is not None:
            registered = self._tours.get(check_name("tour", tour))
            if registered is None or registered.org != org:
                raise InvalidValue("tour", f"{tour} is not a tour of organization {org}")
            if admin:
                raise InvalidValue("admin", "a token for one tour cannot be an admin token")
        token = token or new_token()
        with self._db.using() as cursor:
            cursor.execute(
                "INSERT INTO tokens (token_hash, org, admin, created, tour) VALUES (?, ?, ?, ?, ?)",
                [hash_token(token), org, admin, self._naive_now(), tour],
            )
        return token

    def list_tokens(self) -> list[dict[str, Any]]:
        """Every token, never the token itself: id, organization, admin, tour, when."""
        with self._db.using() as cursor:
            rows = cursor.execute(
                "SELECT token_hash, org, admin, tour, created, last_used FROM tokens "
                "ORDER BY created, org"
            ).fetchall()
        return [
            {"id": token_id(bytes(digest)), "org": org, "admin": admin, "tour": tour,
             "created": _iso(created), "last_used": _iso(last_used)}
            for digest, org, admin, tour, created, last_used in rows
        ]  # fmt: skip

    def revoke_token(self, identifier: str) -> bool:
        """Delete the token with this id; False when there is none."""
        check_token_id(identifier)
        with self._db.using() as cursor:
            row = one(
                cursor,
                "DELETE FROM tokens WHERE hex(token_hash)[1:12] = upper(?) RETURNING org",
                [identifier],
            )
        return row is not None

    def token_used(self, token: str) -> bool | None:
        """Whether ``token`` was ever used; None when it is no token (anymore)."""
        with self._db.using() as cursor:
            row = one(cursor, "SELECT last_used FROM tokens WHERE token_hash = ?",
                      [hash_token(token)])  # fmt: skip
        return None if row is None else row[0] is not None

    def has_tokens(self) -> bool:
        with self._db.using() as cursor:
            return one(cursor, "SELECT count(*) FROM tokens") != (0,)

    def authenticate(self, token: str) -> Principal | None:
        """The principal of ``token``, or None when it is not a token of this instance."""
        if not token.startswith(TOKEN_PREFIX) or len(token) > 100:
            return None
        digest = hash_token(token)
        with self._db.using() as cursor:
            row = one(
                cursor,
                "SELECT token_hash, org, admin, tour, last_used FROM tokens WHERE token_hash = ?",
                [digest],
            )
            if row is None or not hmac.compare_digest(bytes(row[0]), digest):
                return None
            self._note_use(cursor, digest, row[4])
        return Principal(org=row[1], admin=row[2], tour=row[3])

    def _note_use(self, cursor: Any, digest: bytes, last: datetime | None) -> None:
        """Record when a token was used, at most once a minute (a dashboard polls).

        A note, not the request's business: one thread writes it at a time, and a
        write that conflicts with another (a revocation) is skipped, not answered 503.
        """
        now = self._naive_now()
        if last is not None and now - last < LAST_USED_STEP:  # type: ignore[operator]
            return
        if not self._noting.acquire(blocking=False):
            return
        try:
            cursor.execute("UPDATE tokens SET last_used = ? WHERE token_hash = ?", [now, digest])
        except duckdb.Error:  # a conflicting write, a full disk: the request goes on
            pass
        finally:
            self._noting.release()

    def _naive_now(self) -> object:
        return self._clock.now().replace(tzinfo=None)
