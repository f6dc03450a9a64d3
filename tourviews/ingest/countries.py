"""The country of a client address, from a MaxMind-format database (``--geoip FILE``).

DB-IP Lite Country (CC BY 4.0) and GeoLite2 Country are read with ``maxminddb``; of a
record, only ``country.iso_code`` is taken. The lookup runs before the address is
hashed, and only the code is kept: never the address, nor the network it falls in.

Decoding a record (a country's names in a dozen languages) costs more than a beacon
may spend on it (BENCHMARKS.md), so what a lookup found is remembered for the whole
block of addresses the record covers, in memory only: an IPv4 /16 or /24, an IPv6 /32
or /48, whichever is the coarsest that lies within the database's network
(``get_with_prefix_len`` says how far it reaches). So the answer is the database's for
every address of the block, exact, and the visitors of one network cost one decode
between them. A network narrower than a /24 (or an IPv6 /48) is decoded at each lookup.
"""

from __future__ import annotations

import re
import socket
from pathlib import Path
from typing import Any, Final

import maxminddb

from tourviews.ingest.http.address import pack

FLAG = "--geoip"
ISO_CODE = re.compile(r"[A-Z]{2}")
# "ZZ" is ISO 3166's user-assigned code that some databases give to "unknown".
NOT_A_COUNTRY = frozenset(("ZZ",))
# Remembered blocks, by the bytes of the packed address they keep: IPv4 /16 and /24,
# IPv6 /32 and /48, coarsest first. The four lengths differ, so one table holds all.
BLOCKS: Final = {4: (2, 3), 16: (4, 6)}
FAMILIES: Final = {4: socket.AF_INET, 16: socket.AF_INET6}
CACHE_ENTRIES = 65_536  # blocks remembered; a full table forgets the oldest first


class GeoipError(ValueError):
    """The ``--geoip`` file cannot be read as a MaxMind-format database."""


class Countries:
    """The ISO 3166-1 alpha-2 code of an address's country, or None where the database
    has none (a private, loopback or unlisted address, or not an address at all)."""

    def __init__(self, reader: maxminddb.Reader, entries: int = CACHE_ENTRIES) -> None:
        self._reader = reader
        self._blocks: dict[bytes, str] = {}  # "": the database has no country there
        self._entries = entries

    def of(self, address: str | None) -> str | None:
        """The country of ``address``, as the database has it."""
        if address is None or (packed := pack(address)) is None:
            return None
        blocks = self._blocks
        for size in BLOCKS[len(packed)]:
            found = blocks.get(packed[:size])
            if found is not None:
                return found or None
        return self._look_up(packed)

    def _look_up(self, packed: bytes) -> str | None:
        # the canonical spelling: an IPv4-mapped address is looked up as the IPv4 one,
        # so that the prefix length is counted in that family's bits
        record, prefix = self._reader.get_with_prefix_len(
            socket.inet_ntop(FAMILIES[len(packed)], packed)
        )
        country = iso_code(record)
        for size in BLOCKS[len(packed)]:
            if prefix <= size * 8:  # the whole block lies in the database's network
                if len(self._blocks) >= self._entries:
                    del self._blocks[next(iter(self._blocks))]
                self._blocks[packed[:size]] = country or ""
                break
        return country

    def close(self) -> None:
        self._reader.close()


def iso_code(record: Any) -> str | None:
    """``country.iso_code`` of a database record, if it is a country's code."""
    country = record.get("country") if isinstance(record, dict) else None
    code = country.get("iso_code") if isinstance(country, dict) else None
    if isinstance(code, str) and ISO_CODE.fullmatch(code) and code not in NOT_A_COUNTRY:
        return code
    return None


def read_database(path: Path) -> maxminddb.Reader:
    """The database at ``path``, or ``GeoipError`` in one line naming the flag and file."""
    try:
        return maxminddb.open_database(path)
    except (OSError, ValueError, maxminddb.InvalidDatabaseError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        first = reason.splitlines()[0] if reason else type(exc).__name__
        raise GeoipError(
            f"{FLAG}: cannot read {path} as a MaxMind database (DB-IP Lite Country or "
            f"GeoLite2 Country): {first}"
        ) from None


def open_countries(path: Path | None) -> Countries | None:
    """The countries of ``--geoip FILE``, or None without it; ``GeoipError`` in one line."""
    return None if path is None else Countries(read_database(path))
