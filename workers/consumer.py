"""The issue consumer: `python -m workers.consumer`. Any number may run in the group `coupon-issuer`.

Poll a batch, park what can never be processed in the DLQ, persist the rest in chunks of
CONSUMER_CHUNK_EVENTS events (services.persistence), and only then commit the offsets. When the DB, Redis
or the DLQ is unreachable nothing past it is committed: seek back, back off, try again; no error of Kafka,
Redis or the DB ends the process. SIGTERM/SIGINT finish the current batch, commit it and close.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import replace
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from kafka import ConsumerRebalanceListener, KafkaConsumer, TopicPartition
from kafka.errors import CommitFailedError, KafkaError
from kafka.structs import OffsetAndMetadata
from prometheus_client import REGISTRY, start_http_server

from coupon import create_app, settings
from coupon.adapters.locks import PairLocks
from coupon.domain.events import IssueEvent, UndecodableMessage, decode_record
from coupon.domain.vocabulary import utcnow
from coupon.extensions import db
from coupon.observability.instruments import BATCH_SIZE, CONSUMED, LAG, PERSIST_LATENCY, PERSISTED, REJOINS
from coupon.observability.request_ids import KAFKA_HEADER
from coupon.observability.request_ids import accept as accept_request_id
from coupon.resources import of
from coupon.services.persistence import BatchReport, TransientFailure, persist_in_chunks
from coupon.settings import exit_if_invalid
from workers.backoff import Backoff
from workers.dead_letters import DeadLetters, Parcel, parcels_of
from workers.gauges import FailureCounts, StockGauges
from workers.offsets import Polled, commit_points

if TYPE_CHECKING:
    from flask import Flask

log = logging.getLogger("workers.consumer")

# Waits between tries while the DB, Redis, Kafka or the DLQ is out: 0.2 s, doubling, at most this.
FIRST_BACKOFF_S = 0.2
MAX_BACKOFF_S = 5.0
# A rebalance this long is a lost join, not a slow member (workers.consumer.Consumer.watch_rebalance).
REBALANCE_STALL_S = 30.0


class Assignment(ConsumerRebalanceListener):
    """Logs each rebalance, and knows since when one has been going on (revoked, not yet assigned again)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.rebalancing_since: float | None = None

    def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        log.info("partitions revoked: %s", sorted(tp.partition for tp in revoked))
        if self.rebalancing_since is None:
            self.rebalancing_since = self.clock()

    def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        log.info("partitions assigned: %s", sorted(tp.partition for tp in assigned))
        self.rebalancing_since = None

    def stalled(self, limit_s: float) -> float | None:
        """Seconds the current rebalance has lasted, if more than limit_s."""
        if self.rebalancing_since is None:
            return None
        lasted = self.clock() - self.rebalancing_since
        return lasted if lasted > limit_s else None


def _header_request_id(headers: list[tuple[str, bytes]]) -> str | None:
    for key, value in headers:
        if key == KAFKA_HEADER and value:
            return accept_request_id(value.decode(errors="replace"))
    return None


# Events per "events persisted" line: short enough for log shippers' line limits, few enough lines to stay cheap.
EVENTS_PER_LINE = 200


def log_outcomes(report: BatchReport) -> None:
    """What became of each event, with its request id: how a request is followed from HTTP to its DB row.

    Grouped, up to EVENTS_PER_LINE events a line: a line per event cost the consumer a quarter of its drain
    rate. issued_coupons rows are keyed by (coupon_id, user_id); a failure names its failed_issued_coupons id.
    """
    if not report.outcomes or not log.isEnabledFor(logging.INFO):
        return
    events: list[dict[str, Any]] = []
    for event, result, failure_id in report.outcomes:
        item: dict[str, Any] = {
            "request_id": event.request_id,
            "event_id": event.event_id,
            "coupon_id": event.coupon_id,
            "user_id": event.user_id,
            "rank": event.rank,
            "result": result,
        }
        if event.retry_of is not None:
            item["retry_of"] = event.retry_of
        if failure_id is not None:
            item["failure_id"] = failure_id
        events.append(item)
    for start in range(0, len(events), EVENTS_PER_LINE):
        chunk = events[start : start + EVENTS_PER_LINE]
        log.info("events persisted", extra={"count": len(chunk), "events": chunk})


class PollSize:
    """Records to ask of the next poll: `base` while the consumer keeps up; doubled after each full poll (a backlog:
    fewer, bigger batches cost the DB, the broker and this process less per row), up to `most`; halved back toward
    `base` after a poll that came back less than half full."""

    def __init__(self, base: int, most: int) -> None:
        self.base, self.most = base, max(base, most)
        self.size = base

    def after(self, records: int) -> None:
        if records >= self.size:
            self.size = min(self.size * 2, self.most)
        elif records < self.size // 2:
            self.size = max(self.size // 2, self.base)


class Consumer:
    def __init__(self, app: Flask) -> None:
        self.app = app
        self.settings = settings.of(app)
        self.topic = self.settings.kafka_issue_topic
        self.batch_size = self.settings.consumer_batch_size
        self.poll_size = PollSize(self.batch_size, self.settings.consumer_batch_size_max)
        self.chunk_events = self.settings.consumer_chunk_events
        self.stopping = threading.Event()
        self.locks = PairLocks(of(app).redis)
        self.servers = self.settings.kafka_bootstrap_servers.split(",")
        self.dead_letters = DeadLetters(self.servers, self.settings.kafka_dlq_topic)
        self.backoff = Backoff(first=FIRST_BACKOFF_S, cap=MAX_BACKOFF_S)
        self.consumer, self.assignment = self.join()

    def join(self) -> tuple[KafkaConsumer, Assignment]:
        """A Kafka consumer subscribed to the topic as a member of the group, and its rebalance listener."""
        consumer = KafkaConsumer(
            bootstrap_servers=self.servers,
            group_id=self.settings.kafka_consumer_group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=self.batch_size,
            # A killed consumer's partitions move to the others after 10 s, not the default 45 s.
            session_timeout_ms=10_000,
            # A fetch waits for CONSUMER_FETCH_MIN_BYTES (64 KB) or CONSUMER_FETCH_MAX_WAIT_MS: during a sale it
            # fills at once (fewer, fuller batches cost the DB and the CPU less per row); idle, the wait is how often
            # the consumer and the broker wake up (500 ms: a third of the CPU of 100 ms), and a lone request's row
            # lands at most that late.
            fetch_min_bytes=self.settings.consumer_fetch_min_bytes,
            fetch_max_wait_ms=self.settings.consumer_fetch_max_wait_ms,
            heartbeat_interval_ms=3_000,
            client_id="coupon-consumer",
        )
        self.know_topic(consumer)
        assignment = Assignment()
        consumer.subscribe([self.topic], listener=assignment)
        return consumer, assignment

    def know_topic(self, consumer: KafkaConsumer, attempts: int = 20) -> None:
        """Have the topic's partitions in the client's metadata before its first join: joined before its metadata
        names the topic, a consumer is assigned nothing and must rejoin at once (KAFKA-3949: kafka-python guards
        only pattern subscriptions)."""
        for _ in range(attempts):
            if consumer.partitions_for_topic(self.topic):
                return
            self.stopping.wait(0.5)  # created a moment ago: the broker's metadata follows within a few hundred ms
        log.warning("topic %s has no partitions yet (not created?); joining the group anyway", self.topic)

    def watch_rebalance(self) -> None:
        """Rejoin afresh when a rebalance has lasted REBALANCE_STALL_S.

        A legitimate one ends within the group's session timeout (10 s) of its slowest member. In two of seven full
        test runs, kafka-python revoked the partitions to rejoin and then never completed the join, leaving the
        consumer idle beside its backlog for minutes while it kept polling. A new client joins as a new member, and
        the stalled one leaves only once the new one exists (with Kafka unreachable it would have nothing to poll).
        """
        lasted = self.assignment.stalled(REBALANCE_STALL_S)
        if lasted is None:
            return
        log.warning(
            "no partitions for %.0fs since the last rebalance began: closing the Kafka consumer and joining anew",
            lasted,
        )
        try:
            fresh = self.join()
        except Exception as exc:  # Kafka unreachable: the current client keeps trying; another look in 30 s
            log.warning("could not join anew (%s: %s); keeping the current Kafka consumer", type(exc).__name__, exc)
            self.assignment.rebalancing_since = self.assignment.clock()
            return
        REJOINS.inc()
        stalled, (self.consumer, self.assignment) = self.consumer, fresh
        try:
            stalled.close(autocommit=False)  # every handled batch is committed already
        except Exception:
            log.warning("could not close the stalled Kafka consumer cleanly", exc_info=True)

    def stop(self, signum: int, _frame: FrameType | None) -> None:
        log.info("signal %s: finishing the current batch, then stopping", signum)
        self.stopping.set()

    def run(self) -> None:
        """Poll and handle until SIGTERM/SIGINT; an outage of Kafka, Redis or the DB is waited out, never fatal."""
        log.info("consuming %s as group %s", self.topic, self.settings.kafka_consumer_group)
        try:
            while not self.stopping.is_set():
                polled: Polled = {}
                try:
                    polled = self.consumer.poll(timeout_ms=500, max_records=self.poll_size.size)
                    if polled:
                        self.handle(polled)
                    self.poll_size.after(sum(len(records) for records in polled.values()))
                    self.watch_rebalance()
                except Exception:
                    # Nothing of this poll is committed: read it again, or its records would be skipped.
                    delay = self.backoff.next_delay()
                    log.exception("consumer loop error; retrying in %.1fs", delay)
                    self.rewind(polled)
                    self.stopping.wait(delay)
        finally:
            self.close()

    def handle(self, polled: Polled) -> None:
        decoded_records: list[tuple[TopicPartition, int, list[IssueEvent]]] = []
        parcels: list[Parcel] = []
        for tp, records in polled.items():
            for record in records:
                try:
                    decoded = decode_record(record.value)
                except UndecodableMessage as exc:
                    parcels.extend(parcels_of(record, None, str(exc)))
                    continue
                events = decoded.events
                if len(events) == 1 and not decoded.bad and events[0].request_id is None and record.headers:
                    events = [replace(events[0], request_id=_header_request_id(record.headers))]
                parcels.extend(parcels_of(record, decoded))
                decoded_records.append((tp, record.offset, events))
        blocked = self.dead_letters.park(parcels) if parcels else {}
        events = [
            event
            for tp, offset, record_events in decoded_records
            if tp not in blocked or offset < blocked[tp]
            for event in record_events
        ]
        started = time.perf_counter()
        try:
            with self.app.app_context():
                try:
                    report = persist_in_chunks(db.session, self.locks, events, utcnow(), self.chunk_events)
                finally:
                    db.session.remove()
        except TransientFailure as exc:
            self.rewind(polled)
            delay = self.backoff.next_delay()
            log.warning("batch of %d not persisted (%s); retrying in %.1fs", len(events), exc, delay)
            self.stopping.wait(delay)
            return
        points = commit_points(polled, blocked)
        self.commit(points)
        self.dead_letters.committed(blocked)
        PERSIST_LATENCY.observe(time.perf_counter() - started)
        BATCH_SIZE.observe(len(events))
        CONSUMED.inc(len(events))
        for result, count in (
            ("inserted", report.inserted),
            ("duplicate", report.duplicates),
            ("rejected", report.rejected),
            ("failed", report.failed),
            ("cancelled", report.cancelled),
        ):
            if count:
                PERSISTED.labels(result).inc(count)
        self.report_lag(polled)
        log_outcomes(report)
        log.info(
            "batch: %d events in %d chunks, %d inserted, %d duplicates, %d rejected, %d failed, %d resolved",
            len(events),
            report.chunks,
            report.inserted,
            report.duplicates,
            report.rejected,
            report.failed,
            report.resolved,
        )
        if blocked:
            # The DLQ did not take a record: this partition resumes at it, after a pause, like a DB outage.
            for tp, offset in blocked.items():
                self.consumer.seek(tp, offset)
            delay = self.backoff.next_delay()
            log.warning(
                "DLQ unavailable: %d partition(s) held at the record not yet parked; retrying in %.1fs",
                len(blocked),
                delay,
            )
            self.stopping.wait(delay)
        else:
            self.backoff.reset()

    def report_lag(self, polled: Polled) -> None:
        for tp, records in polled.items():
            end = self.consumer.highwater(tp)
            if end is not None and records:
                LAG.labels(str(tp.partition)).set(max(end - (records[-1].offset + 1), 0))

    def rewind(self, polled: Polled) -> None:
        for tp, records in polled.items():
            if not records:
                continue
            try:
                self.consumer.seek(tp, records[0].offset)
            except Exception as exc:
                # Not ours any more after a rebalance: its new owner reads from the committed offset.
                log.warning("could not seek %s back to %d: %s", tp, records[0].offset, exc)

    def commit(self, points: dict[TopicPartition, int]) -> None:
        if not points:
            return
        offsets = {tp: OffsetAndMetadata(offset, "", -1) for tp, offset in points.items()}
        try:
            self.consumer.commit(offsets)
        except (CommitFailedError, KafkaError) as exc:
            # A rebalance moved the partition, or Kafka is down: the records are in the DB, so whoever reads
            # them again finds them already there.
            log.warning("offset commit failed (%s); the batch will be redelivered and deduplicated", exc)

    def close(self) -> None:
        log.info("closing consumer")
        try:
            self.consumer.close()
        except Exception:
            log.warning("could not close the Kafka consumer cleanly", exc_info=True)
        finally:
            self.dead_letters.close()


def lower_priority(increment: int) -> int:
    """Raise this process's niceness by `increment` (clamped to 0-19); the niceness it runs at.

    Linux schedules each session's processes as one group (autogroup) and nice ranks a process only inside its
    group, so a consumer that leads its own session (a container, `setsid`, the bench) lowers its group's too:
    otherwise it would still get an equal share against the API's group.
    """
    niceness = os.nice(max(0, min(increment, 19)))
    if increment > 0 and os.getsid(0) == os.getpid():
        # Not Linux, or autogroup compiled out: the plain nice is all there is.
        with contextlib.suppress(OSError):
            Path("/proc/self/autogroup").write_text(f"{niceness}\n")
    return niceness


def main() -> None:
    with exit_if_invalid():
        app = create_app()
    config = settings.of(app)
    niceness = lower_priority(config.consumer_nice)
    log.info("running at niceness %d (CONSUMER_NICE)", niceness)
    port = config.consumer_metrics_port
    if port:
        # Each consumer process serves its own metrics; several on one host need different ports (0: off).
        REGISTRY.register(FailureCounts(app))
        REGISTRY.register(StockGauges(app))
        start_http_server(port, addr=config.consumer_metrics_host)
        log.info("metrics on http://%s:%d/metrics", config.consumer_metrics_host, port)
    worker = Consumer(app)
    signal.signal(signal.SIGTERM, worker.stop)
    signal.signal(signal.SIGINT, worker.stop)
    worker.run()


if __name__ == "__main__":
    main()
