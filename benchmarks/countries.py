"""The cost of ``--geoip``: a country looked up for each beacon, in µs per beacon.

No real database ships with tourviews (DB-IP's and MaxMind's licences ask for
attribution and updates), so this one is written with ``mmdb-writer``, shaped as DB-IP
Lite Country's records are: continent and country, each with its names in ten
languages, which is what a lookup decodes. The tests build theirs with
``country_database`` too.

Beacons come as a visit sends them (a view, scenes, engaged time) from addresses drawn
over the database's networks, most of them new: ``Pipeline.identify`` with and without
the countries, alternately, on the same beacons.
"""

from __future__ import annotations

import ipaddress
import random
import statistics
import time
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime
from pathlib import Path
from typing import cast

from mmdb_writer import MMDBWriter
from netaddr import IPSet

from tourviews.ingest.agents.classifier import Agent
from tourviews.ingest.beacon import Beacon
from tourviews.ingest.countries import Countries, read_database
from tourviews.ingest.privacy import IpHasher
from tourviews.ingest.rules.ledger import Ledger
from tourviews.ingest.rules.pipeline import Pipeline

LANGUAGES = ("de", "en", "es", "fa", "fr", "ja", "ko", "pt-BR", "ru", "zh-CN")


def _record(code: str, continent: str) -> dict[str, object]:
    def names(of: str) -> dict[str, str]:
        return {language: f"{of} ({language})" for language in LANGUAGES}

    return {
        "continent": {"code": continent, "geoname_id": 6255147, "names": names(continent)},
        "country": {"geoname_id": 1522867, "is_in_european_union": False, "iso_code": code,
                    "names": names(code)},
    }  # fmt: skip


def country_database(path: Path, networks: Mapping[str, Iterable[str]]) -> Path:
    """A MaxMind-format country database at ``path``: each ISO code's networks (CIDR,
    IPv4 and IPv6), IPv4 where a MaxMind reader looks for it in an IPv6 tree."""
    writer = MMDBWriter(ip_version=6, database_type="DBIP-Country-Lite",
                        languages=list(LANGUAGES),
                        description=dict.fromkeys(LANGUAGES, "tourviews test data"),
                        ipv4_compatible=True)  # fmt: skip
    for code, cidrs in networks.items():
        writer.insert_network(IPSet(list(cidrs)), _record(code, "AS"))
    writer.to_db_file(str(path))
    return path


CODES = ("KZ", "RU", "DE", "US", "FR", "GB", "CN", "JP", "BR", "IN", "UZ", "KG")


def bench_networks(count: int, seed: int) -> dict[str, list[str]]:
    """``count`` IPv4 networks of /16 to /24, each in a /16 of its own, by country."""
    draw = random.Random(seed)
    blocks = draw.sample(range(1 << 8, 223 << 8), count)  # the /16s, from 1.0.0.0 on
    networks: dict[str, list[str]] = {code: [] for code in CODES}
    for number, block in enumerate(blocks):
        size = draw.choice((16, 18, 20, 22, 24, 24))
        start = (block << 16) + (draw.randrange(1 << 16) >> (32 - size) << (32 - size))
        networks[CODES[number % len(CODES)]].append(f"{ipaddress.IPv4Address(start)}/{size}")
    return networks


def visit_addresses(networks: Mapping[str, list[str]], visits: int, seed: int) -> list[str]:
    """One address per visit, in the database's networks, each visit from a new one."""
    draw = random.Random(seed)
    cidrs = [ipaddress.IPv4Network(cidr) for each in networks.values() for cidr in each]
    return [
        str(network.network_address + draw.randrange(network.num_addresses))
        for network in (draw.choice(cidrs) for _ in range(visits))
    ]


class _OneSalt:
    def salt(self, day: date) -> bytes:
        return b"s" * 32


# The beacons of one visit: its view, a scene beacon at each change of scene, engaged
# time when the page is hidden (engage.js).
VISIT = ("view", "scene", "scene", "scene", "engage", "engage")
AGENT = Agent("Chrome", "Windows", "desktop")
_NO_LEDGER = cast(Ledger, object())  # identify, measured here, leaves the ledger alone


def bench_countries(folder: Path, rounds: int = 5, visits: int = 4_000) -> dict[str, float]:
    """µs that the lookup adds per beacon of visits from networks not seen before (median
    of rounds), and per lookup in a network not seen before: CPU time of the thread, which
    the other processes on a shared machine do not lengthen."""
    networks = bench_networks(10_000, seed=1)
    reader = read_database(country_database(folder / "countries.mmdb", networks))
    firsts = [str(ipaddress.IPv4Network(cidr).network_address + 1)
              for each in networks.values() for cidr in each]  # fmt: skip
    for address in firsts:  # a running server's mapping of the file is warm
        reader.get(address)
    hasher = IpHasher(_OneSalt())
    beacon = Beacon("t1", "0c4f4e9e-58b5-4b69-9e3a-2f0c9a7b1d11", "view", None)
    now = datetime(2026, 12, 1, tzinfo=UTC)
    added, plain, unseen = [], [], []
    for round_ in range(rounds):
        # nothing remembered: each visit of the round comes from a network not seen yet
        countries = Countries(reader)
        pipelines = {"plain": Pipeline(dict, hasher, _NO_LEDGER),
                     "geoip": Pipeline(dict, hasher, _NO_LEDGER, countries)}  # fmt: skip
        addresses = visit_addresses(networks, visits, seed=round_)
        beacons = [address for address in addresses for _ in VISIT]
        seconds = {}
        for name in ("plain", "geoip") if round_ % 2 else ("geoip", "plain"):
            identify = pipelines[name].identify
            start = time.thread_time()
            for address in beacons:
                identify(beacon, address, AGENT, now, 0.0)
            seconds[name] = time.thread_time() - start
        added.append((seconds["geoip"] - seconds["plain"]) / len(beacons) * 1e6)
        plain.append(seconds["plain"] / len(beacons) * 1e6)
        cold = Countries(reader)
        start = time.thread_time()
        for address in firsts:
            cold.of(address)
        unseen.append((time.thread_time() - start) / len(firsts) * 1e6)
    return {
        "added_us": statistics.median(added),
        "identify_us": statistics.median(plain),
        "unseen_us": statistics.median(unseen),
        "beacons_per_visit": float(len(VISIT)),
    }


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as where:
        print(bench_countries(Path(where)))
