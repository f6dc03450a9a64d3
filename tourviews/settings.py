"""Everything an instance is configured with, checked once at start-up."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from tourviews.analytics.retention import DEFAULT_RETENTION_DAYS
from tourviews.ingest.http.address import Network, parse_networks
from tourviews.ingest.rules.throttle import Rate

DATA_ENV = "TOURVIEWS_DATA"
REDIS_ENV = "TOURVIEWS_REDIS"  # --redis, out of sight of the process list
IP_RATE = Rate.per_minute(600, 100)  # many people can share one address
VISITOR_RATE = Rate.per_minute(120, 30)
TOUR_RATE = Rate(500, 1000)
# Rate limits and the rotation guard key on the sender's network: an IPv4 address, an
# IPv6 /64 (what one customer gets).
LIMIT_PREFIX_V4 = 32
LIMIT_PREFIX_V6 = 64
MAX_SCENES = 500
MAX_WORKERS = 64
REDIS_SCHEMES = ("redis://", "rediss://", "unix://")
REDIS_DURABILITIES = ("strict", "relaxed")
# what an ingest node takes from the primary (with the three rates)
JUDGING = ("ip_prefix_v4", "ip_prefix_v6", "limit_prefix_v4", "limit_prefix_v6", "max_scenes",
           "dedup_window_seconds", "rotation_limit")  # fmt: skip


def default_data_dir() -> Path:
    return Path(os.environ.get(DATA_ENV) or "./data")


@dataclass(frozen=True)
class Settings:
    data_dir: Path = field(default_factory=default_data_dir)
    host: str = "127.0.0.1"
    port: int = 8000
    trusted_proxies: tuple[Network, ...] = ()
    ip_prefix_v4: int | None = None
    ip_prefix_v6: int | None = None
    limit_prefix_v4: int = LIMIT_PREFIX_V4
    limit_prefix_v6: int = LIMIT_PREFIX_V6
    max_scenes: int = MAX_SCENES
    dedup_window_seconds: float = 30 * 60
    rotation_limit: int = 50
    ip_rate: Rate = IP_RATE
    visitor_rate: Rate = VISITOR_RATE
    tour_rate: Rate = TOUR_RATE
    max_batch: int = 1_000
    max_pending: int = 50_000
    # The server records it in the database when it starts: a purge goes by the record,
    # which a command run without the server can read too (tourviews.analytics.retention).
    raw_retention_days: int = DEFAULT_RETENTION_DAYS
    # Personal data deleted (erasure, retention) is rewritten out of the file this long
    # after the first deletion since the last compaction: a few erasures, one rewrite.
    compact_delay_seconds: float = 60 * 60
    # The HTTP server's bounds (docs/hardening.md): open connections, seconds an idle
    # kept-alive connection stays open, seconds a request may take to arrive whole.
    limit_concurrency: int = 4_096
    timeout_keep_alive: int = 5
    timeout_request: float = 10
    # Redis mode (docs/scaling.md): the shared ledger's Redis, and whether a Redis that
    # does not fsync every write is accepted ("relaxed") or refused ("strict").
    redis_url: str | None = None
    redis_durability: str = "strict"
    workers: int = 1  # processes on one listening socket (tourviews.workers)
    # A MaxMind-format database: each counted beacon keeps its address's country
    # (tourviews.ingest.countries). Each process reads its own: not published to nodes.
    geoip: Path | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ValueError("--port must be between 0 and 65535")
        if self.ip_prefix_v4 is not None and not 8 <= self.ip_prefix_v4 <= 32:
            raise ValueError("--ip-prefix-v4 must be between 8 and 32")
        if self.ip_prefix_v6 is not None and not 16 <= self.ip_prefix_v6 <= 128:
            raise ValueError("--ip-prefix-v6 must be between 16 and 128")
        if not 8 <= self.limit_prefix_v4 <= 32:
            raise ValueError("--limit-prefix-v4 must be between 8 and 32")
        if not 16 <= self.limit_prefix_v6 <= 128:
            raise ValueError("--limit-prefix-v6 must be between 16 and 128")
        if self.max_scenes < 1:
            raise ValueError("--max-scenes must be at least 1")
        if self.dedup_window_seconds <= 0:
            raise ValueError("--dedup-window must be positive")
        if self.rotation_limit < 1:
            raise ValueError("--rotation-limit must be at least 1")
        if not 0 <= self.compact_delay_seconds <= 12 * 3600:
            raise ValueError("--compact-delay must be from 0 to 720 minutes")
        if self.raw_retention_days < 1:
            raise ValueError("--raw-retention-days must be at least 1")
        if self.limit_concurrency < 1:
            raise ValueError("--limit-concurrency must be at least 1")
        if not self.timeout_keep_alive > 0:
            raise ValueError("--timeout-keep-alive must be positive")
        if not self.timeout_request > 0:
            raise ValueError("--timeout-request must be positive")
        if self.redis_url is not None and not self.redis_url.startswith(REDIS_SCHEMES):
            raise ValueError("--redis must be a URL like redis://127.0.0.1:6379/0")
        if self.redis_durability not in REDIS_DURABILITIES:
            raise ValueError("--redis-durability must be strict or relaxed")
        if not 1 <= self.workers <= MAX_WORKERS:
            raise ValueError(f"--workers must be from 1 to {MAX_WORKERS}")
        if self.workers > 1 and self.redis_url is None:
            raise ValueError("--workers N needs --redis URL: the workers share their state "
                             "through Redis (docs/scaling.md)")  # fmt: skip

    def judging(self) -> dict[str, Any]:
        """The settings beacons are judged by: the primary publishes them to ingest nodes."""
        return {name: getattr(self, name) for name in JUDGING} | {
            name: [rate.per_second, rate.burst]
            for name, rate in (("ip_rate", self.ip_rate), ("visitor_rate", self.visitor_rate),
                               ("tour_rate", self.tour_rate))
        }  # fmt: skip

    def judging_as(self, published: dict[str, Any]) -> Settings:
        """These settings, judging beacons as the primary that published ``published`` does."""
        changes: dict[str, Any] = {name: published[name] for name in JUDGING}
        for name in ("ip_rate", "visitor_rate", "tour_rate"):
            changes[name] = Rate(*published[name])
        return replace(self, **changes)

    @staticmethod
    def proxies(values: list[str]) -> tuple[Network, ...]:
        return parse_networks(values)
