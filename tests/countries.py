"""A small country database of the tests' own (``mmdb-writer``), for ``--geoip``."""

from __future__ import annotations

from pathlib import Path

from benchmarks.countries import country_database

# Documentation ranges (RFC 5737, RFC 3849), so that no real address is named. Two
# countries share 203.0.113.0/24 (a network narrower than a remembered block), and
# 100.0.0.0/8 spans many /16s.
NETWORKS = {
    "KZ": ["203.0.113.0/25", "2001:db8:dead::/48"],
    "RU": ["203.0.113.128/25"],
    "DE": ["198.51.100.0/24", "2001:db8:beef::/48"],
    "US": ["100.0.0.0/8"],
    "ZZ": ["192.0.2.0/24"],  # what some databases say for "unknown"
}
KZ = "203.0.113.77"
KZ_V6 = "2001:db8:dead:beef::77"
RU = "203.0.113.200"
DE = "198.51.100.9"


def geoip_database(folder: Path, networks: dict[str, list[str]] = NETWORKS) -> Path:
    """The database of ``networks`` by ISO code, written in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    return country_database(folder / "countries.mmdb", networks)
