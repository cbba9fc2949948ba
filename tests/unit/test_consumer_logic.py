"""Unit tests for the consumer's pure decisions: what goes to the DLQ, what is committed, backoff (no I/O)."""

from __future__ import annotations

from collections import namedtuple
from typing import Any

import orjson
import pytest
from kafka import TopicPartition
from kafka.errors import KafkaTimeoutError

from coupon.domain.events import IssueEvent, decode_record, encode_batch
from workers.backoff import Backoff
from workers.consumer import FIRST_BACKOFF_S, MAX_BACKOFF_S, Assignment, PollSize
from workers.dead_letters import DeadLetters, parcels_of
from workers.offsets import commit_points, still_uncommitted

Record = namedtuple("Record", "topic partition offset key value headers")
TP0, TP1 = TopicPartition("t", 0), TopicPartition("t", 1)
EVENT = IssueEvent("e1", "00000000-0000-4000-8000-000000000001", "00000000-0000-4000-8000-000000000002", 3, "t")


def rec(offset: int, value: bytes, partition: int = 0) -> Record:
    return Record("t", partition, offset, b"k", value, [("x-request-id", b"req-1")])


def test_an_undecodable_record_is_one_parcel_with_its_bytes_and_headers() -> None:
    [parcel] = parcels_of(rec(7, b"{not json"), None, "not JSON: x")
    assert (parcel.tp, parcel.offset, parcel.index, parcel.value) == (TP0, 7, None, b"{not json")
    headers = dict(parcel.headers)
    assert headers["error"] == b"not JSON: x" and headers["source"] == b"t/0/7"
    assert headers["x-request-id"] == b"req-1" and "index" not in headers


def test_each_bad_event_of_a_batch_is_its_own_parcel_with_its_index() -> None:
    raw = orjson.dumps({"events": [EVENT.as_dict(), {"event_id": "x"}, EVENT.as_dict(), 5]})
    parcels = parcels_of(rec(4, raw), decode_record(raw))
    assert [(p.index, orjson.loads(p.value or b"")) for p in parcels] == [(1, {"event_id": "x"}), (3, 5)]
    assert [dict(p.headers)["index"] for p in parcels] == [b"1", b"3"]
    assert all(dict(p.headers)["source"] == b"t/0/4" for p in parcels)
    assert len({p.where for p in parcels}) == 2


def test_a_good_record_has_no_parcels() -> None:
    raw = encode_batch([EVENT])
    assert parcels_of(rec(1, raw), decode_record(raw)) == []


def test_commit_points_pass_the_whole_poll_when_nothing_is_blocked() -> None:
    polled = {TP0: [rec(3, b""), rec(4, b"")], TP1: [rec(9, b"", 1)], TopicPartition("t", 2): []}
    assert commit_points(polled, {}) == {TP0: 5, TP1: 10}


def test_commit_points_stop_at_the_first_record_not_in_the_dlq() -> None:
    polled = {TP0: [rec(3, b""), rec(4, b""), rec(5, b"")], TP1: [rec(9, b"", 1)]}
    assert commit_points(polled, {TP0: 4}) == {TP0: 4, TP1: 10}
    # Blocked at its first polled record: nothing of that partition is committed.
    assert commit_points(polled, {TP0: 3, TP1: 9}) == {}


def test_parked_parcels_are_forgotten_once_committed() -> None:
    parked = {("t", 0, 3, None), ("t", 0, 5, 1), ("t", 1, 9, None)}
    assert still_uncommitted(parked, {}) == set()
    assert still_uncommitted(parked, {TP0: 4}) == {("t", 0, 5, 1)}
    assert still_uncommitted(parked, {TP0: 3}) == {("t", 0, 3, None), ("t", 0, 5, 1)}


def test_backoff_starts_at_a_fifth_of_a_second_doubles_and_is_capped() -> None:
    backoff = Backoff(first=FIRST_BACKOFF_S, cap=MAX_BACKOFF_S)
    steps = [backoff.next_delay() for _ in range(8)]
    # ±10 % jitter, so restarted consumers do not retry in step.
    assert steps == pytest.approx([0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0, 5.0], rel=0.1)
    backoff.reset()
    assert backoff.next_delay() <= FIRST_BACKOFF_S * 1.1


class Future:
    def __init__(self, error: Exception | None) -> None:
        self.error = error

    def get(self, timeout: float) -> None:
        if self.error:
            raise self.error


class FlakyProducer:
    """A DLQ producer whose sends fail while `down` is set (as a real broker refusing them would)."""

    def __init__(self, down: bool) -> None:
        self.down = down
        self.sent: list[bytes | None] = []
        self.closed = False

    def send(self, topic: str, key: bytes | None, value: bytes | None, headers: list[Any]) -> Future:
        if self.down:
            return Future(KafkaTimeoutError("no ack"))
        self.sent.append(value)
        return Future(None)

    def close(self, timeout: float) -> None:
        self.closed = True


def dead_letters(producer: FlakyProducer) -> DeadLetters:
    """The consumer's DLQ with a stand-in producer: no Kafka."""
    dlq = DeadLetters(["127.0.0.1:1"], "t.dlq")
    dlq.producer = producer  # type: ignore[assignment]
    return dlq


def test_a_failed_dlq_publish_blocks_its_partition_and_drops_the_producer() -> None:
    broken = FlakyProducer(down=True)
    consumer = dead_letters(broken)
    parcels = parcels_of(rec(5, b"{bad"), None, "not JSON") + parcels_of(rec(2, b"{bad", 1), None, "not JSON")
    assert consumer.park(parcels) == {TP0: 5, TP1: 2}
    assert consumer.parked == set() and broken.closed and consumer.producer is None


def test_parcels_already_in_the_dlq_are_not_sent_again_on_the_next_try() -> None:
    consumer = dead_letters(FlakyProducer(down=False))
    first = parcels_of(rec(5, b"{one"), None, "not JSON")
    assert consumer.park(first) == {}
    again = first + parcels_of(rec(6, b"{two"), None, "not JSON")
    assert consumer.park(again) == {}
    assert consumer.producer is not None and consumer.producer.sent == [b"{one", b"{two"]  # type: ignore[attr-defined]


@pytest.mark.parametrize("down", [True, False])
def test_only_the_lowest_failed_offset_of_a_partition_counts(down: bool) -> None:
    consumer = dead_letters(FlakyProducer(down=down))
    parcels = [p for o in (8, 3, 6) for p in parcels_of(rec(o, b"{x"), None, "not JSON")]
    assert consumer.park(parcels) == ({TP0: 3} if down else {})


def test_polls_grow_while_they_come_back_full_and_shrink_back_as_the_consumer_catches_up() -> None:
    size = PollSize(1000, 8000)
    seen = []
    for records in (1000, 2000, 4000, 8000, 8000, 3000, 1500, 900, 100):
        seen.append(size.size)
        size.after(records)
    assert seen == [1000, 2000, 4000, 8000, 8000, 8000, 4000, 2000, 1000]
    assert size.size == 1000  # never below the base


def test_a_ceiling_below_the_base_keeps_the_base() -> None:
    size = PollSize(1000, 10)
    size.after(1000)
    assert size.size == 1000


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_rebalance_is_stalled_only_after_the_limit_and_ends_with_an_assignment() -> None:
    clock = _Clock()
    assignment = Assignment(clock)
    assert assignment.stalled(30) is None  # not yet joined: nothing revoked, nothing to watch
    assignment.on_partitions_revoked([])  # the first join begins
    clock.now += 29
    assert assignment.stalled(30) is None
    clock.now += 2
    assert assignment.stalled(30) == 31
    assignment.on_partitions_assigned([TopicPartition("t", 0)])
    assert assignment.stalled(30) is None


def test_a_rebalance_lasts_from_its_first_revoke_and_an_empty_assignment_ends_it() -> None:
    clock = _Clock()
    assignment = Assignment(clock)
    assignment.on_partitions_revoked([TopicPartition("t", 0)])
    clock.now += 20
    assignment.on_partitions_revoked([])  # a rejoin within the same rebalance does not restart the count
    clock.now += 15
    assert assignment.stalled(30) == 35
    assignment.on_partitions_assigned([])  # a completed join, even with nothing for this member
    clock.now += 100
    assert assignment.stalled(30) is None
