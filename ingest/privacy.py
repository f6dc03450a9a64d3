"""Keyed IP hashes under daily salts that die 48 hours after their day began.

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

import hmac
import os
import secrets
import threading
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ingest.client import pack
from storage.clock import Clock
from storage.errors import SecretError, StorageError

SALT_FILE = "salts.json"
SALT_LIFETIME = timedelta(hours=48)
HASH_BYTES = 16


def day_start(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)


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
                blob = bytes.fromhex(blob_hex)
                salts[date.fromisoformat(day_text)] = self._aead.decrypt(
                    blob[:12], blob[12:], day_text.encode()
                )
        except InvalidTag:
            raise SecretError(f"{self._path} was sealed under another instance secret") from None
        except (AttributeError, TypeError, ValueError):  # valid JSON, but not salts
            raise StorageError(f"{self._path} is unreadable; move it away to start anew") from None
        return salts

    def _save(self) -> None:
        sealed = {}
        for day, salt in self._salts.items():
            nonce = secrets.token_bytes(12)
            day_text = day.isoformat()
            sealed[day_text] = (nonce + self._aead.encrypt(nonce, salt, day_text.encode())).hex()
        temporary = self._path.with_suffix(".tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(orjson.dumps(sealed))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, self._path)
        directory = os.open(self._path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)


class IpHasher:
    """HMAC-SHA256 of a client address under the salt of the current UTC day, 16 bytes.

    Two hashes of one address: the stored one (of the address, or of the prefix that
    ``--ip-prefix-v4/-v6`` keep), and the *source* that rate limits and the rotation
    guard key on: the network, by default an IPv4 address and an IPv6 /64 (what one
    residential customer gets). The source lives only in memory.
    """

    def __init__(
        self,
        salts: SaltStore,
        prefix_v4: int | None = None,
        prefix_v6: int | None = None,
        limit_prefix_v4: int = 32,
        limit_prefix_v6: int = 64,
    ) -> None:
        if prefix_v4 is not None and not 8 <= prefix_v4 <= 32:
            raise ValueError("--ip-prefix-v4 must be between 8 and 32")
        if prefix_v6 is not None and not 16 <= prefix_v6 <= 128:
            raise ValueError("--ip-prefix-v6 must be between 16 and 128")
        self._salts = salts
        self._drop = {4: 32 - (prefix_v4 or 32), 16: 128 - (prefix_v6 or 128)}
        self._source_drop = {4: 32 - limit_prefix_v4, 16: 128 - limit_prefix_v6}
        self._salt = b""
        self._day_begin = self._day_end = datetime.min.replace(tzinfo=UTC)

    def hash(self, address: str | None, now: datetime) -> bytes:
        """The stored hash."""
        return self.hashes(address, now)[0]

    def hashes(self, address: str | None, now: datetime) -> tuple[bytes, bytes]:
        """(the stored hash, the source that limits key on)."""
        if address is None:
            stored = source = b""
        elif (packed := pack(address)) is None:  # hash what it says: one spelling each
            stored = source = b"?" + address.encode(errors="replace")
        else:
            stored = _prefix(packed, self._drop[len(packed)])
            source = _prefix(packed, self._source_drop[len(packed)])
        digest = self._digest(stored, now)
        return digest, digest if source == stored else self._digest(source, now)

    def _digest(self, canonical: bytes, now: datetime) -> bytes:
        if not self._day_begin <= now < self._day_end:
            day = now.date()
            self._salt = self._salts.salt(day)
            self._day_begin = day_start(day)
            self._day_end = self._day_begin + timedelta(days=1)
        return hmac.digest(self._salt, canonical, "sha256")[:HASH_BYTES]


def _prefix(packed: bytes, drop: int) -> bytes:
    """The packed address with its last ``drop`` bits zeroed."""
    if not drop:
        return packed
    return ((int.from_bytes(packed) >> drop) << drop).to_bytes(len(packed))
