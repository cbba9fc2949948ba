"""The consumer's offset bookkeeping: what a poll holds, and how far each partition may be committed."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from kafka import TopicPartition


class PolledRecord(Protocol):
    """What the consumer reads of a polled record (kafka-python's ConsumerRecord; the unit tests' fakes)."""

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes | None: ...
    @property
    def headers(self) -> list[tuple[str, bytes]]: ...


# One poll: each partition's records, in offset order.
Polled = Mapping[TopicPartition, Sequence[PolledRecord]]
# Where a parcel came from: topic, partition, offset, and the event's index in its record (None: the whole record).
Where = tuple[str, int, int, int | None]


def commit_points(polled: Polled, blocked: dict[TopicPartition, int]) -> dict[TopicPartition, int]:
    """The offset to commit per partition: past the whole poll, or up to (never past) the first record of a
    partition that is not yet in the DLQ. A partition blocked at its first polled record commits nothing."""
    points: dict[TopicPartition, int] = {}
    for tp, records in polled.items():
        if not records:
            continue
        if tp not in blocked:
            points[tp] = records[-1].offset + 1
        elif blocked[tp] > records[0].offset:
            points[tp] = blocked[tp]
    return points


def still_uncommitted(parked: set[Where], blocked: dict[TopicPartition, int]) -> set[Where]:
    """The parked parcels at or past a partition's commit point: they are read again, and must not be parked twice."""
    return {w for w in parked if w[2] >= blocked.get(TopicPartition(w[0], w[1]), w[2] + 1)}
