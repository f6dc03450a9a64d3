"""Registered tours and access tokens.

Tours are read on every beacon, so the registry keeps them in memory as an
immutable mapping that is swapped whole on each change: readers never lock.
Tokens are random (256 bits), shown once and stored only as their SHA-256.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit

from storage.clock import Clock
from storage.database import Database, one
from storage.errors import InvalidValue

NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
ORG = re.compile(r"[A-Za-z0-9_.-]{1,64}")
TOKEN_PREFIX = "tv_"
MAX_DECLARED_SCENES = 10_000


@dataclass(frozen=True, slots=True)
class Tour:
    tour: str
    org: str
    origins: tuple[str, ...]  # empty: any origin may embed the tour
    scenes: frozenset[str] | None = None  # declared scenes; None: any, up to --max-scenes

    def allows(self, origin: str) -> bool:
        return not self.origins or origin.lower() in self.origins

    def document(self) -> dict[str, Any]:
        """The tour as the admin API and the CLI show it."""
        scenes = None if self.scenes is None else sorted(self.scenes)
        return {"tour": self.tour, "org": self.org, "origins": list(self.origins), "scenes": scenes}


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a token speaks for."""

    org: str
    admin: bool


def check_name(field: str, value: object) -> str:
    """A tour or scene identifier: 1-64 of A-Z a-z 0-9 _ -."""
    if not isinstance(value, str) or not NAME.fullmatch(value):
        raise InvalidValue(field, f"{field} must be 1-64 characters of A-Z a-z 0-9 _ -")
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


class Registry:
    """Tours and tokens of one database."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock
        self._tours: Mapping[str, Tour] = MappingProxyType({})
        self.reload()

    @property
    def tours(self) -> Mapping[str, Tour]:
        """Every registered tour by its ID (an immutable snapshot)."""
        return self._tours

    def reload(self) -> None:
        rows = self._db.cursor().execute("SELECT tour, org, origins, scenes FROM tours").fetchall()
        self._tours = MappingProxyType(
            {
                tour: Tour(
                    tour,
                    org,
                    tuple(sorted({check_origin(o) for o in origins})),
                    None if scenes is None else frozenset(scenes),
                )
                for tour, org, origins, scenes in rows
            }
        )

    def put_tour(
        self,
        tour: str,
        org: str,
        origins: Iterable[str] = (),
        scenes: Iterable[str] | None = None,
    ) -> Tour:
        """Register a tour or update its organization, origins and scenes (idempotent)."""
        declared = None
        if scenes is not None:
            declared = frozenset(check_name("scenes", scene) for scene in scenes)
            if len(declared) > MAX_DECLARED_SCENES:
                raise InvalidValue("scenes", f"at most {MAX_DECLARED_SCENES} scenes")
        entry = Tour(
            check_name("tour", tour),
            check_org(org),
            tuple(sorted({check_origin(origin) for origin in origins})),
            declared,
        )
        self._db.cursor().execute(
            "INSERT INTO tours VALUES (?, ?, ?, ?, ?) ON CONFLICT (tour) DO UPDATE "
            "SET org = excluded.org, origins = excluded.origins, scenes = excluded.scenes",
            [entry.tour, entry.org, list(entry.origins), self._naive_now(),
             None if declared is None else sorted(declared)],
        )  # fmt: skip
        self.reload()
        return entry

    def delete_tour(self, tour: str) -> bool:
        """Unregister a tour; its stored events stay. False when it was not registered."""
        found = tour in self._tours
        self._db.cursor().execute("DELETE FROM tours WHERE tour = ?", [tour])
        self.reload()
        return found

    def create_token(self, org: str, admin: bool = False) -> str:
        """A new token for ``org``; only its hash is kept, so this is the one time it is seen."""
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        self._db.cursor().execute(
            "INSERT INTO tokens VALUES (?, ?, ?, ?)",
            [hash_token(token), check_org(org), admin, self._naive_now()],
        )
        return token

    def has_tokens(self) -> bool:
        return one(self._db.cursor(), "SELECT count(*) FROM tokens") != (0,)

    def authenticate(self, token: str) -> Principal | None:
        """The principal of ``token``, or None when it is not a token of this instance."""
        if not token.startswith(TOKEN_PREFIX) or len(token) > 100:
            return None
        digest = hash_token(token)
        row = one(
            self._db.cursor(),
            "SELECT token_hash, org, admin FROM tokens WHERE token_hash = ?",
            [digest],
        )
        if row is None or not hmac.compare_digest(bytes(row[0]), digest):
            return None
        return Principal(org=row[1], admin=row[2])

    def _naive_now(self) -> object:
        return self._clock.now().replace(tzinfo=None)
