"""Telling "not done" from "outcome unknown": Redis errors, Kafka batches that never left, the producer's readiness."""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest
import redis
from kafka.errors import KafkaTimeoutError

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


class FakeBrokers:
    """A producer factory: bootstrapping from a host in `frozen` times out, as from a SIGSTOPped broker."""

    def __init__(self, frozen: set[str]) -> None:
        self.frozen = frozen
        self.tried: list[tuple[list[str], int]] = []

    def __call__(self, bootstrap_servers: list[str], bootstrap_timeout_ms: int, **_: object) -> object:
        self.tried.append((bootstrap_servers, bootstrap_timeout_ms))
        if set(bootstrap_servers) & self.frozen:
            raise KafkaTimeoutError(f"Unable to bootstrap from {bootstrap_servers}")
        return SimpleNamespace(bootstrapped_from=bootstrap_servers)


def test_a_new_producer_bootstraps_from_one_broker_at_a_time_past_a_frozen_one() -> None:
    brokers = FakeBrokers(frozen=set())
    publisher = IssuePublisher("a:9092,b:9094,c:9096", "topic", delivery_timeout_ms=6000, producer_factory=brokers)
    assert publisher._get().bootstrapped_from == ["a:9092"]  # type: ignore[attr-defined]
    brokers.frozen = {"a:9092"}
    publisher._replace()
    assert publisher._get().bootstrapped_from == ["b:9094"]  # type: ignore[attr-defined]
    # Each broker gets its share of the 6 s a send may block: a frozen one costs 2 s, not the whole wait.
    assert brokers.tried == [(["a:9092"], 2000), (["a:9092"], 2000), (["b:9094"], 2000)]


def test_the_broker_that_answered_is_tried_first_next_time_and_all_frozen_is_503() -> None:
    brokers = FakeBrokers(frozen={"a:9092", "b:9094"})
    publisher = IssuePublisher("a:9092,b:9094,c:9096", "topic", delivery_timeout_ms=6000, producer_factory=brokers)
    assert publisher._get().bootstrapped_from == ["c:9096"]  # type: ignore[attr-defined]
    assert [hosts for hosts, _ in brokers.tried] == [["a:9092"], ["b:9094"], ["c:9096"]]
    publisher._replace()
    brokers.tried.clear()
    brokers.frozen = {"a:9092", "b:9094", "c:9096"}
    with pytest.raises(KafkaUnavailable):
        publisher._get()
    assert [hosts for hosts, _ in brokers.tried] == [["c:9096"], ["a:9092"], ["b:9094"]]
    with pytest.raises(KafkaUnavailable):
        publisher.check()  # readiness says DOWN


def test_a_single_broker_keeps_the_three_second_bootstrap() -> None:
    brokers = FakeBrokers(frozen=set())
    IssuePublisher("127.0.0.1:9092", "topic", producer_factory=brokers)._get()
    assert brokers.tried == [(["127.0.0.1:9092"], 3000)]


class FakeAdmins:
    """An admin client factory: bootstrapping from a host in `frozen` times out; each client's metadata requests
    time out `timeouts` times (one went to a frozen broker), then list `topics`."""

    def __init__(self, frozen: set[str], timeouts: int = 0, topics: tuple[str, ...] = ("topic",)) -> None:
        self.frozen, self.timeouts, self.topics = frozen, timeouts, topics
        self.bootstraps: list[str] = []
        self.closed = 0

    def __call__(self, bootstrap_servers: list[str], **_: object) -> FakeAdmins:
        self.bootstraps.append(bootstrap_servers[0])
        if bootstrap_servers[0] in self.frozen:
            raise KafkaTimeoutError(f"Unable to bootstrap from {bootstrap_servers}")
        return self

    def list_topics(self) -> list[str]:
        if self.timeouts:
            self.timeouts -= 1
            raise KafkaTimeoutError("Request timed out")
        return list(self.topics)

    def close(self) -> None:
        self.closed += 1


def test_readiness_asks_again_past_a_frozen_broker_and_starts_with_the_one_that_answered() -> None:
    admins = FakeAdmins(frozen={"a:9092"}, timeouts=2)
    publisher = IssuePublisher("a:9092,b:9094,c:9096", "topic", admin_factory=admins)  # type: ignore[arg-type]
    publisher.ping()  # the bootstrap from a timed out, then two metadata requests; the third was answered
    assert admins.bootstraps == ["a:9092", "b:9094"] and admins.closed == 1
    publisher.ping()
    assert admins.bootstraps[2:] == ["b:9094"] and admins.closed == 2


def test_readiness_fails_when_no_broker_answers_or_the_topic_is_missing() -> None:
    frozen = FakeAdmins(frozen={"a:9092", "b:9094"}, timeouts=2)
    with pytest.raises(KafkaUnavailable):
        IssuePublisher("a:9092,b:9094", "topic", admin_factory=frozen).ping()  # type: ignore[arg-type]
    assert frozen.bootstraps == ["a:9092", "b:9094"]
    silent = FakeAdmins(frozen=set(), timeouts=2)
    with pytest.raises(KafkaUnavailable):
        IssuePublisher("a:9092,b:9094", "topic", admin_factory=silent).ping()  # type: ignore[arg-type]
    assert silent.closed == 1  # two requests, both timed out; the client is closed all the same
    missing = FakeAdmins(frozen=set(), topics=("other",))
    with pytest.raises(KafkaUnavailable, match="does not exist"):
        IssuePublisher("a:9092", "topic", admin_factory=missing).ping()  # type: ignore[arg-type]


@pytest.mark.parametrize("key", ["a", "order-17", "x" * 100, "2026-12-01T09:00:00.000Z", "u.v_w"])
def test_idempotency_keys_that_are_accepted(key: str) -> None:
    assert parse_idempotency_key(key) == key


@pytest.mark.parametrize("key", ["", "x" * 101, "has space", "pipe|pipe", "é", "a\n"])
def test_idempotency_keys_that_are_refused(key: str) -> None:
    with pytest.raises(InvalidIdempotencyKey):
        parse_idempotency_key(key)
