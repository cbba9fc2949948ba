"""Publishes accepted issue requests to Kafka (acks=all, idempotent) and waits for the broker's ack."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from kafka import KafkaAdminClient, KafkaProducer
from kafka.errors import KafkaError

from coupon.adapters.kafka_nodes import ConnectedFirstClient
from coupon.domain.errors import IssueNotConfirmed, KafkaUnavailable
from coupon.domain.events import IssueEvent, encode_batch
from coupon.observability.instruments import PRODUCE_BATCH, PRODUCE_LATENCY
from coupon.observability.request_ids import KAFKA_HEADER

if TYPE_CHECKING:
    from kafka.producer.future import FutureRecordMetadata, RecordMetadata
    from kafka.producer.producer_batch import ProducerBatch

log = logging.getLogger(__name__)

# A record of accepted requests is handed to the producer within this long of its gate decision, or never (503
# E5032, the reservations released). With delivery_timeout_ms after it, this bounds how long a reservation can take
# to become a record on the topic: what a gate rebuilt after a Redis loss waits for before it counts the topic.
APPEND_BUDGET_S = 1.0


def request_id_header(event: IssueEvent) -> list[tuple[str, bytes]] | None:
    """The x-request-id record header of a single-event record (for tools that show headers)."""
    return [(KAFKA_HEADER, event.request_id.encode())] if event.request_id else None


def _batch_of(producer: KafkaProducer, future: FutureRecordMetadata) -> ProducerBatch | None:
    """The accumulator batch holding a just-sent record, or None.

    kafka-python does not say whether a failed record ever left the process; its batch does (`drained`,
    `attempts`). Read right after send(), before the sender greenlet can run, so the batch is still queued.
    Any change in those internals gives None, which the caller treats as "maybe sent".
    """
    try:
        # Private attributes the stubs leave out, so read untyped (cast to Any).
        produce_future = cast(Any, future)._produce_future
        for batch in cast(Any, producer)._accumulator._batches.get(produce_future.topic_partition, ()):
            if batch.produce_future is produce_future:
                return cast("ProducerBatch", batch)
    except Exception:  # internals moved: fall back to the safe answer
        return None
    return None


def never_sent(batch: ProducerBatch | None) -> bool:
    """True only when the batch provably never went to a broker (so the broker cannot append it later)."""
    return batch is not None and batch.drained is None and batch.attempts == 0


class IssuePublisher:
    """A lazily created producer: the API starts even when Kafka is down, and answers 503 until it is back.

    A publish fails in one of two ways. KafkaUnavailable (E5032): the record provably never reached a broker.
    IssueNotConfirmed (E5034): it was sent but not acknowledged in time, so a broker may still append it (a stalled
    broker does, when it resumes). After the second kind the producer is replaced: kafka-python's idempotent
    producer can stay wedged after expiring in-flight batches, failing every later record.
    """

    def __init__(
        self,
        bootstrap_servers: str,
        topic: str,
        delivery_timeout_ms: int = 5000,
        linger_ms: int = 0,
        producer_factory: Callable[..., KafkaProducer] = KafkaProducer,
        admin_factory: Callable[..., KafkaAdminClient] = KafkaAdminClient,
    ) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.topic = topic
        self.delivery_timeout_ms = delivery_timeout_ms
        self.linger_ms = linger_ms
        self._new_producer = producer_factory
        self._new_admin = admin_factory
        self._hosts = [h.strip() for h in bootstrap_servers.split(",") if h.strip()]
        self._bootstrap_turn = 0  # index into _hosts of the broker the next producer bootstraps from first
        self._ping_turn = 0  # the same for the readiness check's client
        self._producer: KafkaProducer | None = None
        self._lock = threading.Lock()
        self.failing_since: float | None = None  # monotonic time of the first failure since the last success
        self.last_failure: float | None = None

    def _get(self) -> KafkaProducer:
        producer = self._producer
        if producer is not None:
            return producer
        with self._lock:
            if self._producer is None:
                self._producer = self._bootstrap()
            return self._producer

    def _bootstrap(self) -> KafkaProducer:
        """A new producer, bootstrapped from one broker at a time, each with its share of max_block_ms.

        kafka-python bootstraps from one broker picked at random and spends its whole bootstrap timeout on it: a
        frozen broker (SIGSTOP, a long GC pause) accepts the connection and never answers, so a producer replaced
        while one is frozen failed one time in three. Any one broker's metadata names the others.
        """
        if not self._hosts:
            raise KafkaUnavailable("KAFKA_BOOTSTRAP_SERVERS names no broker")
        per_host_ms = max(1500, min(3000, self.delivery_timeout_ms // len(self._hosts)))
        deadline = time.monotonic() + self.delivery_timeout_ms / 1000
        failure: KafkaError | None = None
        for turn, host in self._in_turn(self._bootstrap_turn):
            try:
                producer = self._build(host, per_host_ms)
            except KafkaError as exc:
                failure = exc
                log.warning("kafka bootstrap from %s failed: %s", host, exc)
                if time.monotonic() + per_host_ms / 1000 > deadline:
                    break
                continue
            self._bootstrap_turn = turn  # it answered: the next producer starts there
            return producer
        self._bootstrap_turn += 1
        assert failure is not None  # the loop ran at least once
        self._failed(failure, sent=False)
        raise KafkaUnavailable() from failure

    def _in_turn(self, start: int) -> list[tuple[int, str]]:
        """Every bootstrap host with its index, beginning at index `start` (the one that answered last)."""
        count = len(self._hosts)
        return [((start + i) % count, self._hosts[(start + i) % count]) for i in range(count)]

    def _build(self, host: str, bootstrap_timeout_ms: int) -> KafkaProducer:
        request_timeout = max(self.delivery_timeout_ms - self.linger_ms - 100, 1000)
        return self._new_producer(
            bootstrap_servers=[host],
            acks="all",
            enable_idempotence=True,
            linger_ms=self.linger_ms,
            request_timeout_ms=request_timeout,
            # delivery_timeout bounds every send: the future always resolves before we stop waiting,
            # so a record we called failed can't turn up later without its reservation.
            delivery_timeout_ms=self.delivery_timeout_ms,
            max_block_ms=self.delivery_timeout_ms,
            bootstrap_timeout_ms=bootstrap_timeout_ms,
            reconnect_backoff_max_ms=1000,
            client_id="coupon-api",
            metrics_enabled=False,
            # Asks a broker it is connected to, or the one it bootstrapped from, for its producer id and metadata,
            # not one at random: a frozen follower must not stall a producer built while it is frozen.
            kafka_client=ConnectedFirstClient,
        )

    def warm_up(self) -> None:
        """Connect and learn the topic's partitions before the first request needs them (best effort)."""
        try:
            self._get().partitions_for(self.topic)
        except Exception as exc:  # Kafka down at start: the first request will try again and answer 503
            log.warning("kafka warm-up failed: %s", exc)

    @property
    def record_deadline_ms(self) -> int:
        """The longest from a gate decision to its record being on the topic or failed for good: handed to the
        producer within APPEND_BUDGET_S (publish_events refuses later), then appended or failed by the producer
        within delivery_timeout_ms; 1 s of slack. A gate rebuilt after a loss waits this long before counting the
        topic. (A broker that stalls with the record in flight may append it later still: that request was told
        503 E5034, and the record is the one the double fault "Kafka stall + Redis loss" can leave uncounted.)"""
        return int(APPEND_BUDGET_S * 1000) + self.delivery_timeout_ms + 1000

    @property
    def max_wait_s(self) -> float:
        """The longest publish_events can take: send() may wait max_block_ms for metadata, the producer fails a
        record by delivery_timeout, and we wait 2 s more."""
        return 2 * self.delivery_timeout_ms / 1000 + 2

    def publish_events(self, events: list[IssueEvent], decided_at: float | None = None) -> None:
        """Publish accepted requests as one record and return once the broker has acknowledged it.

        `decided_at` (time.monotonic()) is when the gate reserved them: past APPEND_BUDGET_S the record is not sent
        at all (KafkaUnavailable), so every reservation is on the topic within record_deadline_ms or never.
        """
        started = time.perf_counter()
        if len(events) == 1:
            self.publish(events[0].user_id, events[0].to_bytes(), request_id_header(events[0]), decided_at)
        else:
            # A batch record carries each request's id inside its event, not as headers.
            self.publish(events[0].user_id, encode_batch(events), decided_at=decided_at)
        PRODUCE_LATENCY.observe(time.perf_counter() - started)
        PRODUCE_BATCH.observe(len(events))

    def publish(
        self,
        key: str,
        value: bytes,
        headers: list[tuple[str, bytes]] | None = None,
        decided_at: float | None = None,
    ) -> RecordMetadata:
        """Send one record and wait (cooperatively under gevent) for its ack.

        KafkaUnavailable when the record never left this process, IssueNotConfirmed when it may still be appended.
        With `decided_at`, a record that cannot be handed over within APPEND_BUDGET_S of it is never sent.
        """
        producer = self._get()
        try:
            if decided_at is not None:
                # Known partitions: send() below does not wait for metadata (a new producer waits here instead).
                producer.partitions_for(self.topic)
                late = time.monotonic() - decided_at
                if late > APPEND_BUDGET_S:
                    raise KafkaUnavailable(
                        f"The issue queue (Kafka) could not take the record in time ({late:.1f} s); nothing was"
                        " reserved, try again"
                    )
            future = producer.send(self.topic, key=key.encode(), value=value, headers=headers or [])
        except KafkaError as exc:  # before the record was queued: no metadata within max_block_ms, buffer full
            self._failed(exc, sent=False)
            raise KafkaUnavailable() from exc
        batch = _batch_of(producer, future)
        try:
            # A little beyond delivery_timeout_ms: by then the producer itself has failed the record.
            result: RecordMetadata = future.get(timeout=self.delivery_timeout_ms / 1000 + 2)
        except KafkaError as exc:
            sent = not (future.is_done and never_sent(batch))
            self._failed(exc, sent=sent)
            raise (IssueNotConfirmed() if sent else KafkaUnavailable()) from exc
        self.failing_since = None
        return result

    def _failed(self, exc: BaseException, sent: bool) -> None:
        now = time.monotonic()
        self.last_failure = now
        if self.failing_since is None:
            self.failing_since = now
        log.warning("kafka publish failed (%s): %s", "outcome unknown" if sent else "never sent", exc)
        if sent:
            self._replace()

    def _replace(self) -> None:
        """Drop the producer; the next publish builds a fresh one. The old one is closed without waiting."""
        with self._lock:
            old, self._producer = self._producer, None
        if old is not None:
            threading.Thread(target=_close_quietly, args=(old,), daemon=True).start()

    def check(self, recent_s: float = 10.0) -> None:
        """Readiness of the producer itself: DOWN while publishes fail (a broker can answer metadata and still not
        take records), and for recent_s after the last failure."""
        if (
            self.failing_since is not None
            and self.last_failure is not None
            and time.monotonic() - self.last_failure < recent_s
        ):
            raise KafkaUnavailable(f"Kafka publishes are failing (for {time.monotonic() - self.failing_since:.0f}s)")

    def ping(self, timeout_ms: int = 2000) -> None:
        """A fresh metadata request (not the producer's cache): proves a broker answers right now.

        One frozen broker of several must not fail the check (a load balancer would take this API out of rotation
        for it): the client bootstraps from one broker at a time, starting with the last that answered, and a
        metadata request that timed out is asked again. kafka-python sends it to a random broker, and the one that
        timed out is in reconnect backoff by then. With one of three frozen, 8 of 15 checks failed before.
        """
        if not self._hosts:
            raise KafkaUnavailable("KAFKA_BOOTSTRAP_SERVERS names no broker")
        failure: KafkaError | None = None
        for turn, host in self._in_turn(self._ping_turn):
            try:
                admin = self._new_admin(
                    bootstrap_servers=[host],
                    request_timeout_ms=timeout_ms,
                    bootstrap_timeout_ms=timeout_ms,
                    client_id="coupon-readiness",
                )
            except KafkaError as exc:
                failure = exc
                continue
            self._ping_turn = turn
            _bound_connection_setup(admin, timeout_ms)
            try:
                topics = self._list_topics(admin)
            finally:
                admin.close()
            if self.topic not in topics:
                raise KafkaUnavailable(f"Kafka answers, but the topic {self.topic!r} does not exist")
            return
        raise KafkaUnavailable() from failure

    def _list_topics(self, admin: KafkaAdminClient) -> list[str]:
        failure: KafkaError | None = None
        for _ in range(len(self._hosts)):
            try:
                topics: list[str] = admin.list_topics()
                return topics
            except KafkaError as exc:
                failure = exc
        raise KafkaUnavailable() from failure

    def close(self) -> None:
        if self._producer is not None:
            self._producer.close(timeout=5)
            self._producer = None


def _bound_connection_setup(admin: KafkaAdminClient, timeout_ms: int) -> None:
    """Connecting to a broker, its handshake included, may take 10 s in kafka-python (not configurable from the
    admin client), which a frozen broker always takes: bound it like the requests. Its internals moved: no bound."""
    try:
        config = cast(Any, admin)._manager.config
        if "socket_connection_setup_timeout_ms" in config:
            config["socket_connection_setup_timeout_ms"] = timeout_ms
    except AttributeError:
        pass


def _close_quietly(producer: KafkaProducer) -> None:
    try:
        producer.close(timeout=0)
    except Exception as exc:
        log.info("closing a replaced producer: %s", exc)
