"""Publishes accepted issue requests to Kafka (acks=all, idempotent) and waits for the broker's ack."""
from __future__ import annotations

import logging
import threading
import time
from typing import Any

from kafka import KafkaAdminClient, KafkaProducer
from kafka.errors import KafkaError

from coupon.errors import KafkaUnavailable
from coupon.messages import IssueEvent, encode_batch
from coupon.request_ids import KAFKA_HEADER
from coupon.telemetry import PRODUCE_BATCH, PRODUCE_LATENCY

log = logging.getLogger(__name__)


def request_id_header(event: IssueEvent) -> list[tuple[str, bytes]] | None:
    """The x-request-id record header of a single-event record (for tools that show headers)."""
    return [(KAFKA_HEADER, event.request_id.encode())] if event.request_id else None


class IssuePublisher:
    """A lazily created producer: the API starts even when Kafka is down, and answers 503 until it is back."""

    def __init__(self, bootstrap_servers: str, topic: str, delivery_timeout_ms: int = 5000, linger_ms: int = 0) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.topic = topic
        self.delivery_timeout_ms = delivery_timeout_ms
        self.linger_ms = linger_ms
        self._producer: KafkaProducer | None = None
        self._lock = threading.Lock()

    def _get(self) -> KafkaProducer:
        producer = self._producer
        if producer is not None:
            return producer
        with self._lock:
            if self._producer is None:
                request_timeout = max(self.delivery_timeout_ms - self.linger_ms - 100, 1000)
                try:
                    self._producer = KafkaProducer(
                        bootstrap_servers=self.bootstrap_servers.split(","),
                        acks="all",
                        enable_idempotence=True,
                        linger_ms=self.linger_ms,
                        request_timeout_ms=request_timeout,
                        # delivery_timeout bounds every send: the future always resolves before we stop waiting,
                        # so a record we called failed can't turn up later without its reservation.
                        delivery_timeout_ms=self.delivery_timeout_ms,
                        max_block_ms=self.delivery_timeout_ms,
                        bootstrap_timeout_ms=min(self.delivery_timeout_ms, 3000),
                        reconnect_backoff_max_ms=1000,
                        client_id="coupon-api",
                        metrics_enabled=False,
                    )
                except KafkaError as exc:
                    raise KafkaUnavailable() from exc
            return self._producer

    def warm_up(self) -> None:
        """Connect and learn the topic's partitions before the first request needs them (best effort)."""
        try:
            self._get().partitions_for(self.topic)
        except Exception as exc:  # Kafka down at start: the first request will try again and answer 503
            log.warning("kafka warm-up failed: %s", exc)

    @property
    def max_wait_s(self) -> float:
        """The longest publish_events can take: the producer fails a record by delivery_timeout, we wait 2 s more."""
        return self.delivery_timeout_ms / 1000 + 2

    def publish_events(self, events: list[IssueEvent]) -> None:
        """Publish accepted requests as one record and return once the broker has acknowledged it."""
        started = time.perf_counter()
        if len(events) == 1:
            self.publish(events[0].user_id, events[0].to_bytes(), request_id_header(events[0]))
        else:
            # A batch record carries each request's id inside its event, not as headers.
            self.publish(events[0].user_id, encode_batch(events))
        PRODUCE_LATENCY.observe(time.perf_counter() - started)
        PRODUCE_BATCH.observe(len(events))

    def publish(self, key: str, value: bytes, headers: list[tuple[str, bytes]] | None = None) -> Any:
        """Send one record and wait (cooperatively under gevent) for its ack; KafkaUnavailable on any failure."""
        producer = self._get()
        try:
            future = producer.send(self.topic, key=key.encode(), value=value, headers=headers or [])
            # A little beyond delivery_timeout_ms: by then the producer itself has failed the record.
            return future.get(timeout=self.max_wait_s)
        except KafkaError as exc:
            log.warning("kafka publish failed: %s", exc)
            raise KafkaUnavailable() from exc

    def ping(self, timeout_ms: int = 2000) -> None:
        """A fresh metadata request (not the producer's cache): proves a broker answers right now."""
        try:
            admin = KafkaAdminClient(
                bootstrap_servers=self.bootstrap_servers.split(","),
                request_timeout_ms=timeout_ms,
                bootstrap_timeout_ms=timeout_ms,
                client_id="coupon-readiness",
            )
        except KafkaError as exc:
            raise KafkaUnavailable() from exc
        try:
            topics = admin.list_topics()
        except KafkaError as exc:
            raise KafkaUnavailable() from exc
        finally:
            admin.close()
        if self.topic not in topics:
            raise KafkaUnavailable(f"Kafka answers, but the topic {self.topic!r} does not exist")

    def close(self) -> None:
        if self._producer is not None:
            self._producer.close(timeout=5)
            self._producer = None
