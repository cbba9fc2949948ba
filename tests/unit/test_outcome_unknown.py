"""Telling "not done" from "outcome unknown": Redis errors, Kafka batches that never left, the producer's readiness."""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest
import redis

from coupon.adapters.gate import outcome_unknown
from coupon.adapters.kafka_publisher import IssuePublisher, never_sent
from coupon.domain.errors import InvalidIdempotencyKey, KafkaUnavailable
from coupon.http.parsing import parse_idempotency_key


@pytest.mark.parametrize(
    ("error", "unknown"),
    [
        (redis.ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused."), False),
        (redis.TimeoutError("Timeout reading from socket"), True),
        (redis.ConnectionError("Connection closed by server."), True),  # the command may have run before the close
        (redis.exceptions.ClusterDownError("The cluster is down"), True),
    ],
)
def test_only_a_refused_connection_proves_a_redis_command_did_not_run(error: Exception, unknown: bool) -> None:
    assert outcome_unknown(error) is unknown


@pytest.mark.parametrize(
    ("batch", "sent"),
    [
        (SimpleNamespace(drained=None, attempts=0), False),
        (SimpleNamespace(drained=12.5, attempts=0), True),  # drained: written to a broker's socket
        (SimpleNamespace(drained=None, attempts=1), True),  # retried: an earlier attempt went out
        (None, True),  # not found (internals changed): assume it may have been sent
    ],
)
def test_a_kafka_batch_counts_as_never_sent_only_when_it_provably_stayed_here(batch: object, sent: bool) -> None:
    assert never_sent(batch) is (not sent)


def test_the_producer_is_not_ready_while_publishes_fail_and_is_again_after_a_success_or_quiet() -> None:
    publisher = IssuePublisher("127.0.0.1:1", "topic")
    publisher.check()
    publisher._failed(RuntimeError("no ack"), sent=False)
    with pytest.raises(KafkaUnavailable):
        publisher.check()
    publisher.check(recent_s=0)  # long enough since the last failure: let traffic try again
    publisher.failing_since = None
    publisher.last_failure = time.monotonic()
    publisher.check()


@pytest.mark.parametrize("key", ["a", "order-17", "x" * 100, "2026-12-01T09:00:00.000Z", "u.v_w"])
def test_idempotency_keys_that_are_accepted(key: str) -> None:
    assert parse_idempotency_key(key) == key


@pytest.mark.parametrize("key", ["", "x" * 101, "has space", "pipe|pipe", "é", "a\n"])
def test_idempotency_keys_that_are_refused(key: str) -> None:
    with pytest.raises(InvalidIdempotencyKey):
        parse_idempotency_key(key)
