"""The issue consumer: `python -m workers.consumer`. Any number may run in the group `coupon-issuer`.

Poll a batch, persist it (services.persistence), and only then commit the offsets. When the DB or
Redis is unreachable nothing is committed: seek back, back off, try again. SIGTERM/SIGINT finish the
current batch, commit it and close.
"""
from __future__ import annotations

import logging
import signal
import threading
import time
from dataclasses import replace
from typing import Any

from prometheus_client import REGISTRY, start_http_server
from kafka import ConsumerRebalanceListener, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import CommitFailedError, KafkaError
from kafka.structs import OffsetAndMetadata

from coupon import create_app
from coupon.adapters.locks import PairLocks
from coupon.domain import utcnow
from coupon.extensions import db
from coupon.messages import IssueEvent, UndecodableMessage, decode_record
from coupon.request_ids import KAFKA_HEADER
from coupon.request_ids import accept as accept_request_id
from coupon.services.persistence import BatchReport, TransientFailure, persist_batch
from coupon.telemetry import BATCH_SIZE, CONSUMED, LAG, PERSIST_LATENCY, PERSISTED, UNDECODABLE
from workers.gauges import FailureCounts, StockGauges

log = logging.getLogger("workers.consumer")

MAX_BACKOFF_S = 5.0


class _AssignmentLog(ConsumerRebalanceListener):
    def on_partitions_revoked(self, revoked: Any) -> None:
        log.info("partitions revoked: %s", sorted(tp.partition for tp in revoked))

    def on_partitions_assigned(self, assigned: Any) -> None:
        log.info("partitions assigned: %s", sorted(tp.partition for tp in assigned))


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
            "request_id": event.request_id, "event_id": event.event_id, "coupon_id": event.coupon_id,
            "user_id": event.user_id, "rank": event.rank, "result": result,
        }
        if event.retry_of is not None:
            item["retry_of"] = event.retry_of
        if failure_id is not None:
            item["failure_id"] = failure_id
        events.append(item)
    for start in range(0, len(events), EVENTS_PER_LINE):
        chunk = events[start:start + EVENTS_PER_LINE]
        log.info("events persisted", extra={"count": len(chunk), "events": chunk})


class Consumer:
    def __init__(self, app: Any) -> None:
        self.app = app
        cfg = app.config
        self.topic = cfg["KAFKA_ISSUE_TOPIC"]
        self.dlq_topic = cfg["KAFKA_DLQ_TOPIC"]
        self.batch_size = cfg["CONSUMER_BATCH_SIZE"]
        self.stopping = threading.Event()
        self.locks = PairLocks(app.extensions["coupon.redis"])
        servers = cfg["KAFKA_BOOTSTRAP_SERVERS"].split(",")
        self.consumer = KafkaConsumer(
            bootstrap_servers=servers,
            group_id=cfg["KAFKA_CONSUMER_GROUP"],
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=self.batch_size,
            # A killed consumer's partitions move to the others after 10 s, not the default 45 s.
            session_timeout_ms=10_000,
            # Let a fetch gather up to 100 ms of records: fewer, fuller batches cost the DB and the CPU less
            # per row while a sale is running, and add at most 100 ms before a row lands.
            fetch_min_bytes=64 * 1024,
            fetch_max_wait_ms=100,
            heartbeat_interval_ms=3_000,
            client_id="coupon-consumer",
        )
        self.consumer.subscribe([self.topic], listener=_AssignmentLog())
        self.dlq = KafkaProducer(bootstrap_servers=servers, acks="all", enable_idempotence=True, linger_ms=5)
        self.backoff = 0.0
        # Records already parked in the DLQ; a rewound batch must not park them twice.
        self.parked: set[tuple[str, int, int]] = set()

    def stop(self, signum: int, _frame: Any) -> None:
        log.info("signal %s: finishing the current batch, then stopping", signum)
        self.stopping.set()

    def run(self) -> None:
        log.info("consuming %s as group %s", self.topic, self.app.config["KAFKA_CONSUMER_GROUP"])
        try:
            while not self.stopping.is_set():
                polled = self.consumer.poll(timeout_ms=500, max_records=self.batch_size)
                if polled:
                    self.handle(polled)
        finally:
            self.close()

    def handle(self, polled: dict[TopicPartition, list[Any]]) -> None:
        events: list[IssueEvent] = []
        for records in polled.values():
            for record in records:
                try:
                    decoded = decode_record(record.value)
                except UndecodableMessage as exc:
                    self.to_dlq(record, str(exc))
                    continue
                if len(decoded) == 1 and decoded[0].request_id is None and record.headers:
                    decoded = [replace(decoded[0], request_id=_header_request_id(record.headers))]
                events.extend(decoded)
        started = time.perf_counter()
        try:
            with self.app.app_context():
                report = persist_batch(db.session, self.locks, events, utcnow())
                db.session.remove()
        except TransientFailure as exc:
            self.rewind(polled)
            self.backoff = min(max(self.backoff * 2, 0.2), MAX_BACKOFF_S)
            log.warning("batch of %d not persisted (%s); retrying in %.1fs", len(events), exc, self.backoff)
            self.stopping.wait(self.backoff)
            return
        self.backoff = 0.0
        self.commit(polled)
        self.parked.clear()
        PERSIST_LATENCY.observe(time.perf_counter() - started)
        BATCH_SIZE.observe(len(events))
        CONSUMED.inc(len(events))
        for result, count in (("inserted", report.inserted), ("duplicate", report.duplicates),
                              ("rejected", report.rejected), ("failed", report.failed)):
            if count:
                PERSISTED.labels(result).inc(count)
        self.report_lag(polled)
        log_outcomes(report)
        log.info(
            "batch: %d events, %d inserted, %d duplicates, %d rejected, %d failed, %d resolved",
            len(events), report.inserted, report.duplicates, report.rejected, report.failed, report.resolved,
        )

    def report_lag(self, polled: dict[TopicPartition, list[Any]]) -> None:
        for tp, records in polled.items():
            end = self.consumer.highwater(tp)
            if end is not None and records:
                LAG.labels(str(tp.partition)).set(max(end - (records[-1].offset + 1), 0))

    def to_dlq(self, record: Any, reason: str) -> None:
        where = (record.topic, record.partition, record.offset)
        if where in self.parked:
            return
        log.error("undecodable record %s[%d]@%d → DLQ: %s", record.topic, record.partition, record.offset, reason)
        # The original headers (x-request-id) stay, so a parked record can still be traced.
        headers = [*(record.headers or []),
            ("error", reason.encode()[:500]),
            ("source", f"{record.topic}/{record.partition}/{record.offset}".encode()),
        ]
        # Waiting for the ack: the offset is committed past this record only once the DLQ has it.
        self.dlq.send(self.dlq_topic, key=record.key, value=record.value, headers=headers).get(timeout=30)
        self.parked.add(where)
        UNDECODABLE.inc()

    def rewind(self, polled: dict[TopicPartition, list[Any]]) -> None:
        for tp, records in polled.items():
            if records:
                self.consumer.seek(tp, records[0].offset)

    def commit(self, polled: dict[TopicPartition, list[Any]]) -> None:
        offsets = {tp: OffsetAndMetadata(records[-1].offset + 1, "", -1) for tp, records in polled.items() if records}
        try:
            self.consumer.commit(offsets)
        except (CommitFailedError, KafkaError) as exc:
            # A rebalance moved the partition: its new owner re-reads these records, and the DB makes that harmless.
            log.warning("offset commit failed (%s); the batch will be redelivered and deduplicated", exc)

    def close(self) -> None:
        log.info("closing consumer")
        try:
            self.consumer.close()
        finally:
            self.dlq.close(timeout=5)


def main() -> None:
    app = create_app()
    port = app.config["CONSUMER_METRICS_PORT"]
    if port:
        # Each consumer process serves its own metrics; several on one host need different ports (0: off).
        REGISTRY.register(FailureCounts(app))
        REGISTRY.register(StockGauges(app))
        start_http_server(port, addr=app.config["CONSUMER_METRICS_HOST"])
        log.info("metrics on http://%s:%d/metrics", app.config["CONSUMER_METRICS_HOST"], port)
    worker = Consumer(app)
    signal.signal(signal.SIGTERM, worker.stop)
    signal.signal(signal.SIGINT, worker.stop)
    worker.run()


if __name__ == "__main__":
    main()
