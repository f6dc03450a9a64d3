"""``GET /metrics``: Prometheus text, read from the live counters (nothing on the hot path)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from redis.exceptions import RedisError

from tourviews.ingest.http.beacon import BeaconEndpoint
from tourviews.ingest.store.committer import Committer
from tourviews.storage.outcomes import Outcome

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@dataclass(frozen=True)
class SharedFigures:
    """What Redis mode's /metrics reads from Redis (synchronously: it runs in a thread)."""

    nodes: Callable[[], Mapping[str, Mapping[str, int]]]  # node -> outcome -> beacons
    backlog: Callable[[], int]  # stream entries not committed yet


class ServiceCollector(Collector):
    def __init__(
        self, endpoint: BeaconEndpoint, committer: Committer, started: float,
        shared: SharedFigures | None = None,
    ) -> None:  # fmt: skip
        self._endpoint = endpoint
        self._committer = committer
        self._started = started
        self._shared = shared

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        beacons = CounterMetricFamily(
            "tourviews_beacons", "Beacons answered, by outcome", labels=["outcome"]
        )
        outcomes = self._endpoint.outcomes
        for outcome in [*Outcome, "unavailable"]:
            beacons.add_metric([str(outcome)], outcomes.get(outcome, 0))
        yield beacons
        if self._shared is not None:
            yield from self._from_redis(self._shared)
        yield GaugeMetricFamily(
            "tourviews_queue_depth", "Events accepted and not yet committed",
            value=self._committer.pending,
        )  # fmt: skip
        yield GaugeMetricFamily(
            "tourviews_uptime_seconds", "Seconds since the service started",
            value=time.monotonic() - self._started,
        )  # fmt: skip

    @staticmethod
    def _from_redis(shared: SharedFigures) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        family = CounterMetricFamily(
            "tourviews_node_beacons", "Beacons answered by the ingest nodes and front "
            "workers, by node and outcome (reported each second)", labels=["node", "outcome"],
        )  # fmt: skip
        try:  # Redis away: the primary's own figures still show
            reports, backlog = shared.nodes(), shared.backlog()
        except (RedisError, OSError):
            return
        for node, counts in sorted(reports.items()):
            for outcome, count in sorted(counts.items()):
                family.add_metric([node, outcome], count)
        yield family
        yield GaugeMetricFamily(
            "tourviews_stream_backlog",
            "Beacons in the Redis stream that the primary has not committed yet",
            value=backlog,
        )


class Metrics:
    """The service's metrics registry; the committer reports each commit to it."""

    def __init__(
        self, endpoint: BeaconEndpoint, committer: Committer, started: float,
        shared: SharedFigures | None = None,
    ) -> None:  # fmt: skip
        self.registry = CollectorRegistry()
        self.registry.register(ServiceCollector(endpoint, committer, started, shared))
        self.batch_size = Histogram(
            "tourviews_commit_batch_size", "Events per committed batch",
            buckets=(1, 10, 50, 100, 250, 500, 1000, 2000), registry=self.registry,
        )  # fmt: skip
        self.commit_seconds = Histogram(
            "tourviews_commit_seconds", "Time to commit one batch (fsync included)",
            buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
            registry=self.registry,
        )  # fmt: skip
        committer.on_commit = self.committed

    def committed(self, size: int, seconds: float) -> None:
        self.batch_size.observe(size)
        self.commit_seconds.observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)
