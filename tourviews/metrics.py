"""``GET /metrics``: Prometheus text, read from the live counters (nothing on the hot path)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from redis.exceptions import RedisError

from ingest.committer import Committer
from ingest.endpoint import BeaconEndpoint
from storage.outcomes import Outcome

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


Reports = Callable[[], Mapping[str, Mapping[str, int]]]  # node -> outcome -> beacons


class ServiceCollector(Collector):
    def __init__(
        self, endpoint: BeaconEndpoint, committer: Committer, started: float,
        nodes: Reports | None = None,
    ) -> None:  # fmt: skip
        self._endpoint = endpoint
        self._committer = committer
        self._started = started
        self._nodes = nodes  # Redis mode: the ingest nodes' and front workers' counters

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        beacons = CounterMetricFamily(
            "tourviews_beacons", "Beacons answered, by outcome", labels=["outcome"]
        )
        outcomes = self._endpoint.outcomes
        for outcome in [*Outcome, "unavailable"]:
            beacons.add_metric([str(outcome)], outcomes.get(outcome, 0))
        yield beacons
        if self._nodes is not None:
            yield self._node_beacons(self._nodes)
        yield GaugeMetricFamily(
            "tourviews_queue_depth", "Events accepted and not yet committed",
            value=self._committer.pending,
        )  # fmt: skip
        yield GaugeMetricFamily(
            "tourviews_uptime_seconds", "Seconds since the service started",
            value=time.monotonic() - self._started,
        )  # fmt: skip

    @staticmethod
    def _node_beacons(nodes: Reports) -> CounterMetricFamily:
        family = CounterMetricFamily(
            "tourviews_node_beacons", "Beacons answered by the ingest nodes and front "
            "workers, by node and outcome (reported each second)", labels=["node", "outcome"],
        )  # fmt: skip
        try:
            reports = nodes()
        except (RedisError, OSError):  # Redis away: the primary's own figures still show
            reports = {}
        for node, counts in sorted(reports.items()):
            for outcome, count in sorted(counts.items()):
                family.add_metric([node, outcome], count)
        return family


class Metrics:
    """The service's metrics registry; the committer reports each commit to it."""

    def __init__(
        self, endpoint: BeaconEndpoint, committer: Committer, started: float,
        nodes: Reports | None = None,
    ) -> None:  # fmt: skip
        self.registry = CollectorRegistry()
        self.registry.register(ServiceCollector(endpoint, committer, started, nodes))
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
