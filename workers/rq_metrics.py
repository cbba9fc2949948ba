"""The rq worker's /metrics: its periodic jobs' counters and the consumer group's lag read from Kafka at scrape."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from prometheus_client import REGISTRY, start_http_server
from prometheus_client.core import GaugeMetricFamily

from coupon.adapters.kafka_progress import ConsumerProgress
from workers.jobs import start_job_metrics

log = logging.getLogger("workers.rq_worker")


class GroupLag:
    """coupon_consumer_group_lag{partition}: records on the issue topic the group has not committed yet.

    Asked of the brokers, not of the consumers: with every consumer dead or frozen, their own coupon_consumer_lag
    is gone from the scrape, while this one keeps growing with the sale. Kafka down: the gauge is left out."""

    def __init__(self, progress: ConsumerProgress | None) -> None:
        self.progress = progress
        # Kept between scrapes (two requests each, not two new connections); dropped after an error. The metrics
        # server answers each scrape in a thread of its own.
        self._lock = threading.Lock()
        self._reader: KafkaConsumer | None = None
        self._admin: KafkaAdminClient | None = None

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
        if self.progress is None:
            return
        family = self._family()
        with self._lock:
            try:
                ends, done = self._offsets(self.progress)
            except Exception as exc:  # a scrape must answer while Kafka is down; the gauge is left out
                log.warning("consumer group lag unavailable: %s", exc)
                self.close()
                return
        for partition, end in sorted(ends.items()):
            family.add_metric([str(partition)], max(end - done.get(partition, 0), 0))
        yield family

    def _offsets(self, progress: ConsumerProgress) -> tuple[dict[int, int], dict[int, int]]:
        if self._reader is None:
            self._reader = progress.reader("coupon-metrics")
        if self._admin is None:
            self._admin = KafkaAdminClient(
                bootstrap_servers=progress.servers, request_timeout_ms=progress.timeout_ms, client_id="coupon-metrics"
            )
        partitions = self._reader.partitions_for_topic(progress.topic) or set()
        ends = self._reader.end_offsets([TopicPartition(progress.topic, p) for p in partitions])
        offsets = self._admin.list_group_offsets({progress.group: None}).get(progress.group, {})
        done = {tp.partition: int(meta.offset) for tp, meta in offsets.items() if tp.topic == progress.topic}
        return {tp.partition: int(offset) for tp, offset in ends.items()}, done

    def close(self) -> None:
        for client in (self._reader, self._admin):
            if client is not None:
                try:
                    client.close()
                except Exception as exc:  # closing a client of a broker that is gone
                    log.debug("closing a Kafka client: %s", exc)
        self._reader = self._admin = None


def start(cfg: dict[str, Any]) -> bool:
    """Serve /metrics on RQ_WORKER_METRICS_PORT (nothing when it is 0); True when it was started."""
    port = cfg["RQ_WORKER_METRICS_PORT"]
    if not port:
        return False
    start_job_metrics()
    progress = ConsumerProgress(cfg["KAFKA_BOOTSTRAP_SERVERS"], cfg["KAFKA_ISSUE_TOPIC"], cfg["KAFKA_CONSUMER_GROUP"])
    REGISTRY.register(GroupLag(progress))
    start_http_server(port, addr=cfg["RQ_WORKER_METRICS_HOST"])
    log.info("metrics on http://%s:%d/metrics", cfg["RQ_WORKER_METRICS_HOST"], port)
    return True
