"""The issue records the consumer group has not committed yet, read without joining the group (a gate rebuild)."""

from __future__ import annotations

import logging
import time

from kafka import KafkaConsumer, TopicPartition
from kafka.errors import KafkaError

from coupon.adapters.kafka_progress import ConsumerProgress
from coupon.domain.errors import KafkaUnavailable
from coupon.domain.events import IssueEvent, UndecodableMessage, decode_record

log = logging.getLogger(__name__)


class IssueBacklog:
    """Asks the brokers afresh on every call: it runs once per gate rebuild, never per request."""

    def __init__(self, bootstrap_servers: str, topic: str, group: str, timeout_ms: int = 5000) -> None:
        self.topic = topic
        self.timeout_ms = timeout_ms
        self._progress = ConsumerProgress(bootstrap_servers, topic, group, timeout_ms)

    def committed(self) -> dict[int, int]:
        """The group's committed offset per partition (a partition it never committed is missing)."""
        return self._progress.committed()

    def events_since(self, committed: dict[int, int], coupon_id: str) -> list[IssueEvent]:
        """Every event of the coupon in the records from `committed` (the log start where missing) to the log end
        as it is now. Undecodable records and events are skipped: the consumer parks them in the DLQ."""
        consumer = self._progress.reader("coupon-gate-rebuild", fetch_max_wait_ms=100)
        try:
            return self._read(consumer, committed, coupon_id)
        except KafkaError as exc:
            raise KafkaUnavailable() from exc
        finally:
            consumer.close()

    def _read(self, consumer: KafkaConsumer, committed: dict[int, int], coupon_id: str) -> list[IssueEvent]:
        partitions = consumer.partitions_for_topic(self.topic)
        if not partitions:
            raise KafkaUnavailable(f"Kafka does not know the topic {self.topic!r}")
        tps = [TopicPartition(self.topic, p) for p in sorted(partitions)]
        ends = consumer.end_offsets(tps)
        starts = consumer.beginning_offsets(tps)
        todo = {tp: int(ends[tp]) for tp in tps if max(committed.get(tp.partition, 0), starts[tp]) < ends[tp]}
        if not todo:
            return []
        consumer.assign(list(todo))
        for tp in todo:
            consumer.seek(tp, max(committed.get(tp.partition, 0), int(starts[tp])))
        events: list[IssueEvent] = []
        records = 0
        deadline = time.monotonic() + self.timeout_ms / 1000
        while todo:
            if time.monotonic() > deadline:
                raise KafkaUnavailable(f"reading the issue topic's backlog took over {self.timeout_ms} ms")
            for tp, batch in consumer.poll(timeout_ms=200).items():
                for record in batch:
                    if record.offset >= todo.get(tp, 0):
                        break
                    records += 1
                    try:
                        decoded = decode_record(record.value)
                    except UndecodableMessage:
                        continue
                    events.extend(e for e in decoded.events if e.coupon_id == coupon_id)
            for tp in list(todo):
                if (consumer.position(tp) or 0) >= todo[tp]:
                    del todo[tp]
                    consumer.pause(tp)
        log.info("read %d uncommitted records: %d events of coupon %s", records, len(events), coupon_id)
        return events
