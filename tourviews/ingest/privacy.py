"""Keyed IP hashes under the daily salts of ``tourviews.storage.salts``.

Once a day's salt is gone, nobody, the operator included, can link that day's hashes
back to addresses.
"""

from __future__ import annotations

import hmac
from datetime import UTC, datetime, timedelta

from tourviews.ingest.http.address import pack
from tourviews.storage.salts import Salts, day_start

HASH_BYTES = 16


class IpHasher:
    """HMAC-SHA256 of a client address under the salt of the current UTC day, 16 bytes.

    Two hashes of one address: the stored one (of the address, or of the prefix that
    ``--ip-prefix-v4/-v6`` keep), and the *source* that rate limits and the rotation
    guard key on: the network, by default an IPv4 address and an IPv6 /64 (what one
    residential customer gets). The source lives only in memory.
    """

    def __init__(
        self,
        salts: Salts,
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
