"""A consumer's backlog for the bench: issue events preloaded on the topic, and a watch on how fast they land."""

from __future__ import annotations

import threading
import time
import uuid

import sqlalchemy as sa
from kafka import KafkaProducer

from coupon.domain.events import IssueEvent
from harness.invariants import issued_rows


def preload(bootstrap: str, topic: str, coupon_id: str, count: int) -> None:
    """`count` events of distinct users for the coupon, one Kafka record each (as a lone request makes)."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=20, batch_size=512 * 1024)
    for i in range(count):
        user = str(uuid.uuid4())
        event = IssueEvent(uuid.uuid4().hex, coupon_id, user, i + 1, "2026-11-27T00:00:00.000Z")
        producer.send(topic, key=user.encode(), value=event.to_bytes())
    producer.flush()
    producer.close()


class DrainWatch(threading.Thread):
    """Counts the coupon's rows every `interval` s until all `total` have landed: when the first and the last did,
    and how many there were at any moment (`rows_at`)."""

    def __init__(self, engine: sa.Engine, coupon_id: str, total: int, interval: float = 0.1, timeout: float = 600):
        super().__init__(daemon=True)
        self.engine, self.coupon_id, self.total = engine, coupon_id, total
        self.interval, self.timeout = interval, timeout
        self.samples: list[tuple[float, int]] = []
        self.first_at: float | None = None
        self.done_at: float | None = None
        self.landed = threading.Event()  # the first rows are in

    @property
    def rows(self) -> int:
        return self.samples[-1][1] if self.samples else 0

    def run(self) -> None:
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            rows = issued_rows(self.engine, self.coupon_id)
            now = time.time()
            self.samples.append((now, rows))
            if rows and self.first_at is None:
                self.first_at = now
                self.landed.set()
            if rows >= self.total:
                self.done_at = now
                return
            time.sleep(self.interval)  # a DB count per sample: polled, there is no event to wait for

    def rows_at(self, when: float) -> int:
        """Rows landed at epoch second `when` (the last sample at or before it)."""
        return max((rows for at, rows in self.samples if at <= when), default=0)
