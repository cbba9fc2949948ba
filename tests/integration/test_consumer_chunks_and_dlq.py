"""The consumer under load and outages: a backlog persisted in chunks, a DLQ that refuses records, bad events."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import requests
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType, NewTopic

from coupon import resources
from coupon.domain.events import IssueEvent
from harness.client import Api, burst
from harness.gate_calls import reserve_one
from harness.invariants import check_invariants, issued_rows, wait_drained
from harness.processes import Stack, wait_for
from harness.services import services
from tests.integration.conftest import KAFKA

# Fault injection and end-to-end runs: `make test` runs them, `make check` leaves them out.
pytestmark = pytest.mark.slow

POISON = b"{not json at all"


def _accept(api: Api, coupon_id: str, users: list[tuple[str, str]]) -> list[str]:
    results = burst(api.base, [("POST", f"/api/coupon/{coupon_id}/issue", t) for _, t in users])
    return [u for (u, _), r in zip(users, results) if r[0] == 202]


def _read_all(topic: str, expect: int, timeout: float = 30) -> list[Any]:
    reader = KafkaConsumer(topic, bootstrap_servers=KAFKA, auto_offset_reset="earliest", consumer_timeout_ms=500)
    got: list[Any] = []
    try:
        wait_for(lambda: got.extend(reader) or len(got) >= expect, timeout, f"{expect} records on {topic}")
        got.extend(reader)  # and nothing more turns up
    finally:
        reader.close()
    return got


def _committed(group: str, tp: TopicPartition) -> int | None:
    admin = KafkaAdminClient(bootstrap_servers=KAFKA)
    try:
        found = admin.list_group_offsets({group: [tp]}).get(group, {})
    finally:
        admin.close()
    meta = found.get(tp)
    return None if meta is None or meta.offset < 0 else meta.offset


def test_a_backlog_of_many_chunks_is_persisted_whole(
    pipeline_env: dict[str, str], tmp_path: Path, engine, rdb, admin_token: str, mint
) -> None:
    stack = Stack(dict(pipeline_env, CONSUMER_CHUNK_EVENTS="50"), tmp_path)
    try:
        api = Api(stack.start_api())
        coupon = api.create_coupon(admin_token, 1000)
        users = mint(600)
        # No consumer yet: the requests wait on Kafka as one backlog, which the first polls take in bulk.
        accepted = _accept(api, coupon["id"], users)
        assert len(accepted) == 600
        consumer = stack.start_consumer()
        wait_drained(engine, coupon["id"], 600)
        counts = check_invariants(engine, rdb, coupon["id"], accepted)
        assert counts == {"total": 1000, "issued": 600, "rejected": 0, "pending": 0}

        # The consumer logs a batch after committing it: the line may trail the rows a moment.
        def logged_polls() -> list[tuple[int, int]]:
            found = re.findall(r"batch: (\d+) events in (\d+) chunks", consumer.log())
            return [(int(n), int(c)) for n, c in found]

        wait_for(lambda: sum(n for n, _ in logged_polls()) >= 600, 15, "the consumer to log its 600 events")
        polls = logged_polls()
        # Polls bigger than a chunk really were split, into chunks of at most 50 events.
        big = [(n, c) for n, c in polls if n > 50]
        assert big, f"no poll of more than one chunk: {polls}"
        assert all(c == -(-n // 50) for n, c in big), big
        assert consumer.alive()
    finally:
        stack.stop()


@pytest.fixture
def refusing_dlq() -> Iterator[str]:
    """A DLQ topic whose broker refuses every record (max.message.bytes=1) until the test lifts the limit."""
    name = f"test.{uuid.uuid4().hex[:8]}.coupon.issue.dlq.refusing"
    admin = KafkaAdminClient(bootstrap_servers=KAFKA)
    try:
        admin.create_topics(
            [NewTopic(name, num_partitions=1, replication_factor=1, topic_configs={"max.message.bytes": "1"})]
        )
        yield name
    finally:
        try:
            admin.delete_topics([name])
        finally:
            admin.close()


def _lift_limit(topic: str) -> None:
    admin = KafkaAdminClient(bootstrap_servers=KAFKA)
    try:
        admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topic, configs={"max.message.bytes": "1048588"})])
    finally:
        admin.close()


def test_a_dlq_that_refuses_records_holds_the_partition_and_the_consumer_rides_it_out(
    pipeline_env: dict[str, str], tmp_path: Path, engine, rdb, admin_token: str, mint, refusing_dlq: str
) -> None:
    env = dict(pipeline_env, KAFKA_DLQ_TOPIC=refusing_dlq)
    topic, group = env["KAFKA_ISSUE_TOPIC"], env["KAFKA_CONSUMER_GROUP"]
    producer = KafkaProducer(bootstrap_servers=KAFKA, acks="all")
    poison_offset = producer.send(topic, key=b"poison", value=POISON, partition=0).get(timeout=10).offset
    producer.close()
    stack = Stack(env, tmp_path)
    try:
        api = Api(stack.start_api())
        consumer = stack.start_consumer()
        coupon = api.create_coupon(admin_token, 100)
        users = mint(60)
        # One at a time, so each is a record of its own keyed by its user: spread over the partitions. A burst
        # would be one batch record or a few, all on the poisoned partition now and then.
        accepted = [u for u, t in users if api.call("POST", f"/api/coupon/{coupon['id']}/issue", t).status_code == 202]
        assert len(accepted) == 60
        # The broker refuses the DLQ record again and again; the consumer waits, it does not die.
        wait_for(lambda: consumer.log().count("DLQ unavailable") >= 3, 60, "three refused DLQ attempts")
        assert "MessageSizeTooLarge" in consumer.log()
        # Partitions without the poison go on: their requests become rows during the outage.
        wait_for(lambda: issued_rows(engine, coupon["id"]) > 0, 30, "rows from the unblocked partitions")
        assert consumer.alive()
        committed = _committed(group, TopicPartition(topic, 0))
        assert committed is None or committed <= poison_offset, committed
        assert _read_all(refusing_dlq, 0, timeout=1) == []
        _lift_limit(refusing_dlq)
        parked = _read_all(refusing_dlq, 1)
        assert [r.value for r in parked] == [POISON]
        headers = dict(parked[0].headers)
        assert headers["error"].startswith(b"not JSON") and headers["source"] == f"{topic}/0/{poison_offset}".encode()
        wait_drained(engine, coupon["id"], 60)
        wait_for(
            lambda: (_committed(group, TopicPartition(topic, 0)) or 0) > poison_offset,
            30,
            "the offset committed past the parked record",
        )
        counts = check_invariants(engine, rdb, coupon["id"], accepted)
        assert counts["issued"] == 60
        assert consumer.alive()
    finally:
        stack.stop()


def test_one_bad_event_of_a_batch_record_is_parked_alone_and_the_others_become_rows(
    stack: Stack, app: Any, engine, rdb, admin_token: str, mint
) -> None:
    api = Api(stack.base_url)
    coupon = api.create_coupon(admin_token, 10)
    users = [u for u, _ in mint(3)]
    # What the API does: reserve at the gate, then publish the accepted requests as one batch record.
    gate = resources.of(app).gate
    ranks = [reserve_one(gate, coupon["id"], u).rank for u in users]
    items: list[object] = [
        IssueEvent(uuid.uuid4().hex, coupon["id"], u, r, "2026-11-27T09:00:00.000Z").as_dict()
        for u, r in zip(users, ranks)
    ]
    bad = {"event_id": "broken", "coupon_id": coupon["id"], "user_id": "not-a-uuid", "rank": 1, "requested_at": "t"}
    items.insert(1, bad)
    topic = stack.env["KAFKA_ISSUE_TOPIC"]
    producer = KafkaProducer(bootstrap_servers=KAFKA, acks="all")
    meta = producer.send(
        topic, key=b"batch", value=orjson.dumps({"events": items}), headers=[("x-request-id", b"req-batch")]
    ).get(timeout=10)
    producer.close()
    wait_drained(engine, coupon["id"], 3)
    counts = check_invariants(engine, rdb, coupon["id"], users)
    assert counts["issued"] == 3
    [parked] = _read_all(stack.env["KAFKA_DLQ_TOPIC"], 1)
    assert orjson.loads(parked.value) == bad
    headers = dict(parked.headers)
    assert headers["index"] == b"1"
    assert headers["source"] == f"{topic}/{meta.partition}/{meta.offset}".encode()
    assert b"user_id must be a UUID" in headers["error"]
    assert headers["x-request-id"] == b"req-batch"
    assert stack.procs[-1].alive()


def test_the_consumer_rides_out_a_kafka_restart_and_drains_what_came_after(
    stack: Stack, engine, rdb, admin_token: str, mint
) -> None:
    api = Api(stack.base_url)
    consumer = stack.procs[-1]
    coupon = api.create_coupon(admin_token, 200)
    users = mint(100)
    accepted = _accept(api, coupon["id"], users[:50])
    wait_drained(engine, coupon["id"], len(accepted))
    services("restart", "kafka")  # its own broker (KAFKA_PORT), stopped cleanly and back: the log is kept
    assert consumer.alive()
    wait_for(lambda: requests.get(api.base + "/health/ready", timeout=2).status_code == 200, 60, "the API ready")
    # A request refused while the API's producer reconnects reserved nothing (503): it is simply not accepted.
    accepted += _accept(api, coupon["id"], users[50:])
    assert len(accepted) > 50
    wait_drained(engine, coupon["id"], len(accepted))
    assert consumer.alive()
    counts = check_invariants(engine, rdb, coupon["id"], accepted)
    assert counts["issued"] == len(accepted)
