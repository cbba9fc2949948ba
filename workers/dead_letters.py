"""The consumer's dead-letter queue: what of a record is parked there, and parking it before its offset moves on."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from kafka import KafkaProducer, TopicPartition

from coupon.domain.events import DecodedRecord
from coupon.observability.instruments import UNDECODABLE
from workers.offsets import PolledRecord, Where, still_uncommitted

log = logging.getLogger("workers.consumer")

# One wait for the DLQ's acks of a whole batch's parcels, not one per parcel.
DLQ_ACK_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class Parcel:
    """Something to park in the DLQ: a whole record (index None) or one bad event of a batch record."""

    tp: TopicPartition
    offset: int
    index: int | None
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]
    reason: str

    @property
    def where(self) -> Where:
        return (self.tp.topic, self.tp.partition, self.offset, self.index)


def parcels_of(record: PolledRecord, decoded: DecodedRecord | None, reason: str = "") -> list[Parcel]:
    """What of a record goes to the DLQ: the whole record when it did not decode, else each bad event alone.

    The original headers (x-request-id) stay, so a parked record can still be traced; `source` and `index`
    say where it came from.
    """
    if decoded is not None and not decoded.bad:
        return []
    tp = TopicPartition(record.topic, record.partition)
    source = ("source", f"{record.topic}/{record.partition}/{record.offset}".encode())
    original = list(record.headers or [])
    if decoded is None:
        headers = [*original, ("error", reason.encode()[:500]), source]
        return [Parcel(tp, record.offset, None, record.key, record.value, headers, reason)]
    return [
        Parcel(
            tp,
            record.offset,
            bad.index,
            record.key,
            bad.raw,
            [*original, ("error", bad.reason.encode()[:500]), source, ("index", str(bad.index).encode())],
            bad.reason,
        )
        for bad in decoded.bad
    ]


class DeadLetters:
    """The DLQ topic's producer, and the parcels already parked whose offsets are not committed yet."""

    def __init__(self, servers: list[str], topic: str) -> None:
        self.servers = servers
        self.topic = topic
        self.producer: KafkaProducer | None = None
        # A rewound batch must not park these twice.
        self.parked: set[Where] = set()

    def park(self, parcels: list[Parcel]) -> dict[TopicPartition, int]:
        """Send the parcels to the DLQ and wait for its acks; returns, per partition, the lowest offset that is
        not in the DLQ yet (the offset is committed past a record only once the DLQ has all of it)."""
        pending = [p for p in parcels if p.where not in self.parked]
        sent: list[tuple[Parcel, Any, BaseException | None]] = []
        for parcel in pending:
            try:
                future = self._producer().send(self.topic, key=parcel.key, value=parcel.value, headers=parcel.headers)
            except Exception as exc:
                sent.append((parcel, None, exc))
                continue
            sent.append((parcel, future, None))
        deadline = time.monotonic() + DLQ_ACK_TIMEOUT_S
        blocked: dict[TopicPartition, int] = {}
        errors: list[BaseException] = []
        for parcel, future, send_error in sent:
            error = send_error
            if error is None:
                try:
                    future.get(timeout=max(deadline - time.monotonic(), 0.1))
                except Exception as exc:
                    error = exc
            if error is not None:
                errors.append(error)
                blocked[parcel.tp] = min(blocked.get(parcel.tp, parcel.offset), parcel.offset)
                continue
            self.parked.add(parcel.where)
            UNDECODABLE.inc()
            log.error(
                "undecodable %s %s[%d]@%d → DLQ: %s",
                "record" if parcel.index is None else f"event #{parcel.index} of record",
                parcel.tp.topic,
                parcel.tp.partition,
                parcel.offset,
                parcel.reason,
            )
        if errors:
            log.warning(
                "%d of %d DLQ publishes failed (%s: %s); the producer is rebuilt before the next try",
                len(errors),
                len(pending),
                type(errors[0]).__name__,
                errors[0],
            )
            self.close()
        return blocked

    def committed(self, blocked: dict[TopicPartition, int]) -> None:
        """The batch's offsets are committed (up to `blocked`): forget the parcels that won't be read again."""
        self.parked = still_uncommitted(self.parked, blocked)

    def _producer(self) -> KafkaProducer:
        # Built on first use, and again after a failure: an idempotent producer may not recover from some errors.
        if self.producer is None:
            self.producer = KafkaProducer(
                bootstrap_servers=self.servers, acks="all", enable_idempotence=True, linger_ms=5
            )
        return self.producer

    def close(self) -> None:
        producer, self.producer = self.producer, None
        if producer is not None:
            try:
                producer.close(timeout=5)
            except Exception:
                log.warning("could not close the DLQ producer", exc_info=True)
