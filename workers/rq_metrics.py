"""The rq worker's /metrics: its periodic jobs' counters and the consumer group's lag read from Kafka at scrape."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from typing import Protocol

from prometheus_client import REGISTRY, start_http_server
from prometheus_client.core import GaugeMetricFamily

from coupon.adapters.kafka_progress import ConsumerProgress, GroupOffsets
from coupon.settings import Settings
from workers.jobs import start_job_metrics

log = logging.getLogger("workers.rq_worker")


class Offsets(Protocol):
    def offsets(self) -> tuple[dict[int, int], dict[int, int]]: ...


class GroupLag:
    """coupon_consumer_group_lag{partition}: records on the issue topic the group has not committed yet.

    Asked of the brokers, not of the consumers: with every consumer dead or frozen, their own coupon_consumer_lag
    is gone from the scrape, while this one keeps growing with the sale. Kafka down: the gauge is left out."""

    def __init__(self, source: Offsets | None) -> None:
        self.source = source
        # The metrics server answers each scrape in a thread of its own; the source's clients are one caller's.
        self._lock = threading.Lock()

    @staticmethod
    def _family() -> GaugeMetricFamily:
        return GaugeMetricFamily(
            "coupon_consumer_group_lag",
            "Records of the issue topic the consumer group has not committed, per partition (from the brokers)",
            labels=["partition"],
        )

    def describe(self) -> Iterator[GaugeMetricFamily]:
        yield self._family()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        if self.source is None:
            return
        family = self._family()
        with self._lock:
            try:
                ends, done = self.source.offsets()
            except Exception as exc:  # a scrape must answer while Kafka is down; the gauge is left out
                log.warning("consumer group lag unavailable: %s", exc.__cause__ or exc)
                return
        for partition, end in sorted(ends.items()):
            family.add_metric([str(partition)], max(end - done.get(partition, 0), 0))
        yield family


def start(cfg: Settings) -> bool:
    """Serve /metrics on RQ_WORKER_METRICS_PORT (nothing when it is 0); True when it was started."""
    port = cfg.rq_worker_metrics_port
    if not port:
        return False
    start_job_metrics()
    progress = ConsumerProgress(cfg.kafka_bootstrap_servers, cfg.kafka_issue_topic, cfg.kafka_consumer_group)
    REGISTRY.register(GroupLag(GroupOffsets(progress)))
    start_http_server(port, addr=cfg.rq_worker_metrics_host)
    log.info("metrics on http://%s:%d/metrics", cfg.rq_worker_metrics_host, port)
    return True
