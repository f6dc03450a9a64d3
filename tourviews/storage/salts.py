"""Daily salts that die 48 hours after their day began (the IP hashes' keys).

A salt is 32 random bytes made for one UTC day. Salts are kept only sealed with
AES-GCM under a key derived from the instance secret, in a file that is rewritten
whole (write, fsync, rename) whenever a salt is born or destroyed. Once a salt is
gone, nobody, the operator included, can link that day's hashes back to addresses.

A salt dies when the wall clock says its 48 hours are over *and* that much real time
(the monotonic clock) has passed since this process took it up at that wall time: a
wall clock stepped forward and back again destroys no salt early, so a day keeps
its one salt. A process started with a wall clock already wrong cannot tell.
"""

from __future__ import annotations

import os
import secrets
import threading
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Protocol

import orjson
import redis
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from tourviews.storage.clock import Clock
from tourviews.storage.database import fsync_path
from tourviews.storage.errors import SecretError, StorageError

SALT_FILE = "salts.json"
SHARED_PREFIX = "tv:{0}:salt:"  # the partition's hash tag, as every shared key
SALT_LIFETIME = timedelta(hours=48)


def day_start(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)


class Salts(Protocol):
    """Where the IP hasher takes a day's salt from: the file store of one process, or
    Redis, shared by every process of the instance."""

    def salt(self, day: date) -> bytes: ...


def seal(aead: AESGCM, day: date, salt: bytes) -> bytes:
    """``salt`` sealed under the instance secret's key, bound to its day."""
    nonce = secrets.token_bytes(12)
    return nonce + aead.encrypt(nonce, salt, day.isoformat().encode())


def unseal(aead: AESGCM, day: date, blob: bytes) -> bytes:
    return aead.decrypt(blob[:12], blob[12:], day.isoformat().encode())


class SaltStore:
    """The salts of the last two UTC days, sealed at rest."""

    def __init__(self, path: Path, key: bytes, clock: Clock) -> None:
        self._path = path
        self._aead = AESGCM(key)
        self._clock = clock
        self._lock = threading.Lock()
        self._salts: dict[date, bytes] = self._load()
        # day -> (wall time, monotonic time) when this process took its salt up
        self._taken: dict[date, tuple[datetime, float]] = {}
        for day in self._salts:
            self._take(day)
        self.expire()

    def salt(self, day: date) -> bytes:
        """The salt of ``day``, made now if it does not exist yet and is still alive."""
        salt = self._salts.get(day)
        if salt is not None:
            return salt
        with self._lock:
            if day not in self._salts:
                if day_start(day) + SALT_LIFETIME <= self._clock.now():
                    raise ValueError(f"the salt of {day} is past its lifetime")
                self._salts[day] = secrets.token_bytes(32)
                self._take(day)
                self._drop_expired()
                self._save()
            return self._salts[day]

    def days(self) -> list[date]:
        """The days whose salts still exist."""
        return sorted(self._salts)

    def expire(self) -> list[date]:
        """Destroy every salt whose day began 48 hours ago or more; returns their days."""
        with self._lock:
            dropped = self._drop_expired()
            if dropped:
                self._save()
            return dropped

    def _take(self, day: date) -> None:
        self._taken[day] = (self._clock.now(), self._clock.monotonic())

    def _dead(self, day: date, now: datetime, moment: float) -> bool:
        death = day_start(day) + SALT_LIFETIME
        wall, taken = self._taken[day]
        return death <= now and moment - taken >= (death - wall).total_seconds()

    def _drop_expired(self) -> list[date]:
        now, moment = self._clock.now(), self._clock.monotonic()
        dropped = [day for day in self._salts if self._dead(day, now, moment)]
        for day in dropped:
            del self._salts[day]
            del self._taken[day]
        return dropped

    def _load(self) -> dict[date, bytes]:
        try:
            sealed = orjson.loads(self._path.read_bytes())
        except FileNotFoundError:
            return {}
        except orjson.JSONDecodeError:
            raise StorageError(f"{self._path} is unreadable; move it away to start anew") from None
        salts = {}
        try:
            for day_text, blob_hex in sealed.items():
                day = date.fromisoformat(day_text)
                salts[day] = unseal(self._aead, day, bytes.fromhex(blob_hex))
        except InvalidTag:
            raise SecretError(f"{self._path} was sealed under another instance secret") from None
        except (AttributeError, TypeError, ValueError):  # valid JSON, but not salts
            raise StorageError(f"{self._path} is unreadable; move it away to start anew") from None
        return salts

    def _save(self) -> None:
        sealed = {day.isoformat(): seal(self._aead, day, salt).hex()
                  for day, salt in self._salts.items()}  # fmt: skip
        temporary = self._path.with_suffix(".tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(orjson.dumps(sealed))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, self._path)
        fsync_path(self._path.parent)


class SharedSalts:
    """Each UTC day's salt, made once for every process of the instance, in Redis.

    The first process to need a day's salt offers one (``SET NX``); all then use the
    one that won. Redis keeps it sealed under the instance secret's key, and deletes it
    48 hours after its day began (``EXAT``, on Redis' clock). A process asks Redis once
    a day: the client is synchronous, and waits at most ``TIMEOUT`` seconds. The
    services take each day's salt ahead, in a thread (``tourviews.modes.salts_ahead``),
    so that the day's first beacon does not wait on Redis on the event loop.
    """

    TIMEOUT = 2.0

    def __init__(self, client: redis.Redis, key: bytes, clock: Clock) -> None:
        self._client = client
        self._aead = AESGCM(key)
        self._clock = clock
        self._salts: dict[date, bytes] = {}

    def holds(self, day: date) -> bool:
        return day in self._salts

    def salt(self, day: date) -> bytes:
        salt = self._salts.get(day)
        if salt is not None:
            return salt
        death = day_start(day) + SALT_LIFETIME
        if death <= self._clock.now():
            raise ValueError(f"the salt of {day} is past its lifetime")
        name = f"{SHARED_PREFIX}{day.isoformat()}"
        offer = seal(self._aead, day, secrets.token_bytes(32))
        try:
            self._client.set(name, offer, nx=True, exat=int(death.timestamp()))
            sealed = self._client.get(name)
        except (redis.RedisError, OSError):
            raise StorageError("Redis is unavailable: no salt for today") from None
        if sealed is None:  # deleted in between: its lifetime just ended
            raise ValueError(f"the salt of {day} is past its lifetime")
        try:
            salt = unseal(self._aead, day, bytes(sealed))  # type: ignore[arg-type]
        except InvalidTag:
            raise SecretError(
                "the salts in Redis were sealed under another instance secret: "
                "TOURVIEWS_SECRET must be the primary's"
            ) from None
        self._salts = {d: s for d, s in self._salts.items() if d >= day - timedelta(days=1)}
        self._salts[day] = salt
        return salt
