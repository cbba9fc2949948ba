"""How far the consumer group has got: end offsets of the issue topic against the group's committed offsets."""

from __future__ import annotations

import logging
import time

from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from kafka.errors import KafkaError

from coupon.domain.errors import KafkaUnavailable

log = logging.getLogger(__name__)


class ConsumerProgress:
    """Asks the brokers afresh on every call (the sweeper runs every few seconds, not per request)."""

    def __init__(self, bootstrap_servers: str, topic: str, group: str, timeout_ms: int = 5000) -> None:
        self.servers = bootstrap_servers.split(",")
        self.topic = topic
        self.group = group
        self.timeout_ms = timeout_ms

    def reader(self, client_id: str, fetch_max_wait_ms: int = 500) -> KafkaConsumer:
        """A consumer outside the group (it never commits): for reading offsets and records as they are now."""
        try:
            return KafkaConsumer(
                bootstrap_servers=self.servers,
                group_id=None,
                enable_auto_commit=False,
                request_timeout_ms=max(self.timeout_ms, 1000) + 1000,
                client_id=client_id,
                fetch_max_wait_ms=fetch_max_wait_ms,
            )
        except KafkaError as exc:
            raise KafkaUnavailable() from exc

    def end_offsets(self) -> dict[int, int]:
        consumer = self.reader("coupon-sweeper")
        try:
            partitions = consumer.partitions_for_topic(self.topic) or set()
            ends = consumer.end_offsets([TopicPartition(self.topic, p) for p in partitions])
            return {tp.partition: int(offset) for tp, offset in ends.items()}
        except KafkaError as exc:
            raise KafkaUnavailable() from exc
        finally:
            consumer.close()

    def committed(self) -> dict[int, int]:
        try:
            admin = KafkaAdminClient(
                bootstrap_servers=self.servers, request_timeout_ms=self.timeout_ms, client_id="coupon-sweeper"
            )
        except KafkaError as exc:
            raise KafkaUnavailable() from exc
        try:
            offsets = admin.list_group_offsets({self.group: None}).get(self.group, {})
            return {tp.partition: int(meta.offset) for tp, meta in offsets.items() if tp.topic == self.topic}
        except KafkaError as exc:
            raise KafkaUnavailable() from exc
        finally:
            admin.close()

    def caught_up(self, wait_s: float) -> int:
        """Wait until the group has committed everything appended before this call; 0, or how many records it
        was still behind when wait_s ran out."""
        target = self.end_offsets()
        deadline = time.monotonic() + wait_s
        while True:
            done = self.committed()
            behind = sum(max(end - done.get(p, 0), 0) for p, end in target.items())
            if behind == 0 or time.monotonic() >= deadline:
                return behind
            time.sleep(0.5)


class GroupOffsets:
    """End offsets and the group's committed offsets with clients kept between calls (a metrics scrape every few
    seconds: two requests each, not two new connections). After a failure the clients are dropped and made anew
    on the next call. Not thread-safe: one caller at a time."""

    def __init__(self, progress: ConsumerProgress, client_id: str = "coupon-metrics") -> None:
        self.progress = progress
        self.client_id = client_id
        self._reader: KafkaConsumer | None = None
        self._admin: KafkaAdminClient | None = None

    def offsets(self) -> tuple[dict[int, int], dict[int, int]]:
        """(end offset, committed offset) per partition of the topic; KafkaUnavailable when Kafka does not answer."""
        p = self.progress
        try:
            if self._reader is None:
                self._reader = p.reader(self.client_id)
            if self._admin is None:
                self._admin = KafkaAdminClient(
                    bootstrap_servers=p.servers, request_timeout_ms=p.timeout_ms, client_id=self.client_id
                )
            partitions = self._reader.partitions_for_topic(p.topic) or set()
            ends = self._reader.end_offsets([TopicPartition(p.topic, n) for n in partitions])
            offsets = self._admin.list_group_offsets({p.group: None}).get(p.group, {})
        except Exception as exc:
            self.close()
            raise KafkaUnavailable() from exc
        done = {tp.partition: int(meta.offset) for tp, meta in offsets.items() if tp.topic == p.topic}
        return {tp.partition: int(offset) for tp, offset in ends.items()}, done

    def close(self) -> None:
        for client in (self._reader, self._admin):
            if client is not None:
                try:
                    client.close()
                except Exception as exc:  # closing a client of a broker that is gone
                    log.debug("closing a Kafka client: %s", exc)
        self._reader = self._admin = None
