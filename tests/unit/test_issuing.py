"""Unit tests for coupon.services.issuing (request_issue, decide_and_publish) with hand-written limiter, gate and
publisher fakes; the batcher is the real Coalescer, which runs a batch of one per submit outside gevent."""

from __future__ import annotations

import uuid
from datetime import datetime
from functools import partial

import pytest
from kafka.errors import KafkaError, KafkaTimeoutError

from coupon.adapters.coalescer import Coalescer
from coupon.adapters.gate import GateDecision, GateOutcome, GateRequest, Hold, HoldMode
from coupon.adapters.rate_limit import ALLOWED, Admission, LimitDecision, LimitOutcome
from coupon.domain.errors import (
    AccountDeleted,
    AlreadyParticipated,
    AppError,
    CouponDisabled,
    CouponNotFound,
    IssueEnded,
    IssueNotConfirmed,
    IssueNotStarted,
    IssueQueueFull,
    KafkaUnavailable,
    RateLimited,
    RedisUnavailable,
    SoldOut,
)
from coupon.domain.events import IssueEvent, decode, decode_record, encode_batch
from coupon.services import issuing
from coupon.services.gate_recovery import Rebuilt
from coupon.services.issuing import IssueAccepted, IssueTicket, decide_and_publish, request_issue

COUPON_ID = "11111111-2222-4333-8444-555555555555"
USER_ID = "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee"
NOW = datetime(2026, 11, 27, 9, 0, 0, 250000)


class FakeLimiter:
    """Answers admit_many() with a verdict per user (ALLOWED for anyone not named) and records every admission."""

    def __init__(self, verdicts: dict[str, LimitDecision] | None = None) -> None:
        self.verdicts = verdicts or {}
        self.admitted: list[Admission] = []

    def admit_many(self, items: list[Admission]) -> list[LimitDecision]:
        self.admitted.extend(items)
        return [self.verdicts.get(item.user_id or "", ALLOWED) for item in items]


class FakeGate:
    """Answers reserve_many() from a script of decisions (an accepted one carries the request's event id, as
    reserve.lua's does) and records every request and every hold change."""

    def __init__(
        self, *decisions: GateDecision, release_error: Exception | None = None, confirm: list[bool] | None = None
    ) -> None:
        self.decisions = list(decisions)
        self.requests: list[GateRequest] = []
        self.reserve_calls: list[tuple[str, str]] = []
        self.release_calls: list[tuple[str, str]] = []
        self.settle_calls: list[tuple[HoldMode, list[Hold]]] = []
        self.release_error = release_error
        self.confirm = confirm

    def reserve_many(self, requests: list[GateRequest]) -> list[GateDecision]:
        self.requests.extend(requests)
        self.reserve_calls.extend((r.coupon_id, r.user_id) for r in requests)
        out = []
        for request in requests:
            decision = self.decisions.pop(0)
            if decision.outcome is GateOutcome.ACCEPTED and not decision.event_id:
                decision = GateDecision(decision.outcome, decision.rank, request.event_id, decision.replicated)
            out.append(decision)
        return out

    def settle_many(self, mode: HoldMode, holds: list[Hold], cutoff_ms: int = 0) -> list[bool]:
        self.settle_calls.append((mode, holds))
        if mode is HoldMode.RELEASE:
            self.release_calls.extend((h.coupon_id, h.user_id) for h in holds)
            if self.release_error is not None:
                raise self.release_error
        if mode is HoldMode.CONFIRM and self.confirm is not None:
            return self.confirm
        return [True] * len(holds)

    def release_many(self, holds: list[Hold]) -> int:
        return sum(self.settle_many(HoldMode.RELEASE, holds))


class FakePublisher:
    """Records published records; raises `error` instead when given one."""

    def __init__(self, error: BaseException | None = None) -> None:
        self.records: list[tuple[str, bytes]] = []
        self.error = error

    def publish_events(self, events: list[IssueEvent], decided_at: float | None = None) -> None:
        if self.error is not None:
            raise self.error
        value = events[0].to_bytes() if len(events) == 1 else encode_batch(events)
        self.records.append((events[0].user_id, value))


class FakeRebuild:
    def __init__(self, result: Rebuilt) -> None:
        self.result = result
        self.calls: list[tuple[object, object, str]] = []

    def __call__(self, session: object, recovery: object, coupon_id: str, now: datetime) -> Rebuilt:
        self.calls.append((session, recovery, coupon_id))
        return self.result


def accepted(rank: int) -> GateDecision:
    return GateDecision(GateOutcome.ACCEPTED, rank)


def issue(
    gate: FakeGate, publisher: FakePublisher, request_id: str | None = None, limiter: FakeLimiter | None = None
) -> IssueAccepted:
    batcher = Coalescer(partial(decide_and_publish, limiter or FakeLimiter(), gate, publisher))
    batcher._gevent = False  # a batch of one per submit, run in the caller
    return request_issue(None, batcher, gate, IssueTicket.new(COUPON_ID, USER_ID, NOW, request_id=request_id), NOW)  # type: ignore[arg-type]


# --- accepted ------------------------------------------------------------------------------------


def test_accepted_publishes_exactly_one_record() -> None:
    publisher = FakePublisher()
    issue(FakeGate(accepted(41)), publisher)
    assert len(publisher.records) == 1


def test_accepted_record_carries_the_request_id() -> None:
    publisher = FakePublisher()
    issue(FakeGate(accepted(41)), publisher, "req-7")
    issue(FakeGate(accepted(42)), publisher)
    assert [decode(raw).request_id for _, raw in publisher.records] == ["req-7", None]


def test_accepted_record_is_keyed_by_user_id() -> None:
    publisher = FakePublisher()
    issue(FakeGate(accepted(41)), publisher)
    key, _ = publisher.records[0]
    assert key == USER_ID


def test_accepted_record_decodes_to_the_request() -> None:
    publisher = FakePublisher()
    issue(FakeGate(accepted(41)), publisher)
    event = decode(publisher.records[0][1])
    assert (event.coupon_id, event.user_id, event.rank) == (COUPON_ID, USER_ID, 41)
    assert event.requested_at == "2026-11-27T09:00:00.250Z"
    assert event.retry_of is None


def test_accepted_returns_the_rank_and_request_time() -> None:
    publisher = FakePublisher()
    result = issue(FakeGate(accepted(41)), publisher)
    assert result == IssueAccepted(COUPON_ID, USER_ID, 41, "2026-11-27T09:00:00.250Z")
    assert result.requested_at == decode(publisher.records[0][1]).requested_at


def test_accepted_reserves_once_and_releases_nothing() -> None:
    gate = FakeGate(accepted(0))
    issue(gate, FakePublisher())
    assert gate.reserve_calls == [(COUPON_ID, USER_ID)]
    assert gate.release_calls == []


def test_each_request_gets_its_own_event_id() -> None:
    publisher = FakePublisher()
    issue(FakeGate(accepted(1)), publisher)
    issue(FakeGate(accepted(2)), publisher)
    ids = [decode(value).event_id for _, value in publisher.records]
    assert len(set(ids)) == 2
    for event_id in ids:
        uuid.UUID(event_id)  # a UUID's hex form


# --- gate rejections -----------------------------------------------------------------------------

REJECTIONS = [
    (GateOutcome.DUPLICATE, AlreadyParticipated),
    (GateOutcome.SOLD_OUT, SoldOut),
    (GateOutcome.NOT_STARTED, IssueNotStarted),
    (GateOutcome.ENDED, IssueEnded),
    (GateOutcome.DISABLED, CouponDisabled),
]


@pytest.mark.parametrize(("outcome", "error"), REJECTIONS, ids=[o.name for o, _ in REJECTIONS])
def test_rejection_raises_the_matching_error(outcome: GateOutcome, error: type[AppError]) -> None:
    with pytest.raises(AppError) as exc_info:
        issue(FakeGate(GateDecision(outcome, 0)), FakePublisher())
    assert type(exc_info.value) is error
    assert exc_info.value.data == {"couponId": COUPON_ID}


@pytest.mark.parametrize(("outcome", "error"), REJECTIONS, ids=[o.name for o, _ in REJECTIONS])
def test_rejection_publishes_nothing_and_releases_nothing(outcome: GateOutcome, error: type[AppError]) -> None:
    gate, publisher = FakeGate(GateDecision(outcome, 0)), FakePublisher()
    with pytest.raises(error):
        issue(gate, publisher)
    assert publisher.records == []
    assert gate.release_calls == []
    assert gate.reserve_calls == [(COUPON_ID, USER_ID)]


# --- publish failures ----------------------------------------------------------------------------

PUBLISH_FAILURES = [
    KafkaUnavailable(),
    RuntimeError("broker exploded"),
    KafkaError("generic kafka failure"),
    KafkaTimeoutError("no ack in time"),
]


def test_a_publish_that_never_left_releases_the_reservation_once() -> None:
    gate = FakeGate(accepted(9))
    with pytest.raises(KafkaUnavailable):
        issue(gate, FakePublisher(KafkaUnavailable()))
    assert gate.release_calls == [(COUPON_ID, USER_ID)]


MAYBE_SENT = [*PUBLISH_FAILURES[1:], IssueNotConfirmed()]


@pytest.mark.parametrize("error", MAYBE_SENT, ids=lambda e: type(e).__name__)
def test_a_publish_that_may_have_reached_the_broker_keeps_the_reservation_unconfirmed(error: Exception) -> None:
    gate = FakeGate(accepted(9))
    with pytest.raises(IssueNotConfirmed):
        issue(gate, FakePublisher(error))
    assert gate.release_calls == []
    [(mode, holds)] = gate.settle_calls
    assert mode is HoldMode.UNCONFIRM and [(h.coupon_id, h.user_id) for h in holds] == [(COUPON_ID, USER_ID)]


@pytest.mark.parametrize("error", PUBLISH_FAILURES[1:], ids=lambda e: type(e).__name__)
def test_failed_publish_keeps_the_original_error_as_cause(error: Exception) -> None:
    with pytest.raises(IssueNotConfirmed) as exc_info:
        issue(FakeGate(accepted(9)), FakePublisher(error))
    assert exc_info.value.__cause__ is error


def test_an_app_error_from_the_publisher_is_passed_through_unchanged() -> None:
    error = KafkaUnavailable("custom reason")
    with pytest.raises(KafkaUnavailable) as exc_info:
        issue(FakeGate(accepted(9)), FakePublisher(error))
    assert exc_info.value is error


def test_a_release_failure_turns_nothing_reserved_into_not_confirmed() -> None:
    # The reservation is still there: telling the caller "nothing was reserved" would be a lie.
    gate = FakeGate(accepted(9), release_error=ConnectionError("redis gone"))
    with pytest.raises(IssueNotConfirmed):
        issue(gate, FakePublisher(KafkaUnavailable()))
    assert gate.release_calls == [(COUPON_ID, USER_ID)]


def test_an_acknowledged_record_is_answered_only_once_its_hold_is_confirmed() -> None:
    gate = FakeGate(accepted(9), confirm=[False])  # the sweeper got there first
    with pytest.raises(IssueNotConfirmed):
        issue(gate, FakePublisher())
    assert [mode for mode, _ in gate.settle_calls] == [HoldMode.CONFIRM]


def test_a_hold_being_settled_is_answered_not_confirmed_and_publishes_nothing() -> None:
    publisher = FakePublisher()
    with pytest.raises(IssueNotConfirmed):
        issue(FakeGate(GateDecision(GateOutcome.SETTLING, 4, "e1")), publisher)
    assert publisher.records == []


def test_a_replayed_request_gets_its_first_answer_and_publishes_nothing() -> None:
    publisher = FakePublisher()
    result = issue(FakeGate(GateDecision(GateOutcome.REPLAYED, 4, "e1")), publisher)
    assert result.rank == 4 and publisher.records == []


def test_the_idempotency_key_is_the_gate_token_and_a_fresh_request_uses_its_event_id() -> None:
    gate = FakeGate(accepted(1), accepted(2))
    batcher = Coalescer(partial(decide_and_publish, FakeLimiter(), gate, FakePublisher()))
    batcher._gevent = False
    request_issue(None, batcher, gate, IssueTicket.new(COUPON_ID, USER_ID, NOW, idempotency_key="order-17"), NOW)  # type: ignore[arg-type]
    request_issue(None, batcher, gate, IssueTicket.new(COUPON_ID, USER_ID, NOW), NOW)  # type: ignore[arg-type]
    keyed, fresh = gate.requests
    assert keyed.token == "korder-17" and keyed.event_id != keyed.token
    assert fresh.token == fresh.event_id


class Killed(BaseException):
    """Stands in for a greenlet kill / KeyboardInterrupt during the wait for the ack."""


def test_a_killed_publish_re_raises_as_is_and_keeps_the_reservation() -> None:
    # A kill (worker shutdown) can come after the record left: the producer's close() at exit still delivers it,
    # so releasing here could leave a coupon without its reservation. A leak is what `flask reconcile` finds.
    gate = FakeGate(accepted(9))
    with pytest.raises(Killed):
        issue(gate, FakePublisher(Killed()))
    assert gate.release_calls == []


# --- batches -------------------------------------------------------------------------------------

A = GateOutcome.ACCEPTED
OTHER = "bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb"
THIRD = "cccccccc-cccc-4ccc-8ccc-cccccccccccc"


def tickets(*users: str) -> list[IssueTicket]:
    return [IssueTicket(COUPON_ID, u, "2026-11-27T09:00:00.250Z", event_id=uuid.uuid4().hex) for u in users]


def test_a_batch_publishes_one_record_with_only_the_accepted_requests() -> None:
    gate = FakeGate(accepted(1), GateDecision(GateOutcome.DUPLICATE, 7), accepted(2))
    publisher = FakePublisher()
    results = decide_and_publish(FakeLimiter(), gate, publisher, tickets(USER_ID, OTHER, THIRD))  # type: ignore[arg-type]
    assert [(r.outcome, r.rank) for r in results] == [(A, 1), (GateOutcome.DUPLICATE, 7), (A, 2)]  # type: ignore[union-attr]
    assert len(publisher.records) == 1
    events = decode_record(publisher.records[0][1]).events
    assert [(e.user_id, e.rank) for e in events] == [(USER_ID, 1), (THIRD, 2)]
    assert len({e.event_id for e in events}) == 2


def test_a_batch_without_accepted_requests_publishes_nothing() -> None:
    gate = FakeGate(GateDecision(GateOutcome.SOLD_OUT, 0), GateDecision(GateOutcome.DUPLICATE, 3))
    publisher = FakePublisher()
    decide_and_publish(FakeLimiter(), gate, publisher, tickets(USER_ID, OTHER))  # type: ignore[arg-type]
    assert publisher.records == []


def test_a_failed_publish_releases_every_accepted_request_of_the_batch_and_fails_only_them() -> None:
    gate = FakeGate(accepted(1), GateDecision(GateOutcome.SOLD_OUT, 0), accepted(2))
    results = decide_and_publish(FakeLimiter(), gate, FakePublisher(KafkaUnavailable()), tickets(USER_ID, OTHER, THIRD))  # type: ignore[arg-type]
    assert gate.release_calls == [(COUPON_ID, USER_ID), (COUPON_ID, THIRD)]
    assert isinstance(results[0], KafkaUnavailable) and results[0] is results[2]
    assert results[1] == GateDecision(GateOutcome.SOLD_OUT, 0)


# --- admission in the batch ---------------------------------------------------------------------


def test_refused_requests_never_reach_the_gate_and_the_others_go_on() -> None:
    limiter = FakeLimiter(
        {OTHER: LimitDecision(LimitOutcome.LIMITED, 2.5), THIRD: LimitDecision(LimitOutcome.ACCOUNT_DELETED)}
    )
    gate, publisher = FakeGate(accepted(1)), FakePublisher()
    results = decide_and_publish(limiter, gate, publisher, tickets(USER_ID, OTHER, THIRD))  # type: ignore[arg-type]
    assert [a.user_id for a in limiter.admitted] == [USER_ID, OTHER, THIRD]
    assert gate.reserve_calls == [(COUPON_ID, USER_ID)]
    assert (results[0].outcome, results[0].rank) == (A, 1)  # type: ignore[union-attr]
    assert isinstance(results[1], RateLimited) and results[1].retry_after == 3  # whole seconds, rounded up
    assert isinstance(results[2], AccountDeleted)
    assert [e.user_id for e in decode_record(publisher.records[0][1]).events] == [USER_ID]


def test_a_batch_refused_whole_calls_neither_gate_nor_kafka() -> None:
    limiter = FakeLimiter({USER_ID: LimitDecision(LimitOutcome.LIMITED, 1.0)})
    gate, publisher = FakeGate(), FakePublisher()
    with pytest.raises(RateLimited):
        issue(gate, publisher, limiter=limiter)
    assert gate.reserve_calls == [] and publisher.records == []


def test_the_address_travels_to_the_limiter() -> None:
    limiter = FakeLimiter()
    batch = [IssueTicket(COUPON_ID, USER_ID, "2026-11-27T09:00:00.250Z", address="198.51.100.7")]
    decide_and_publish(limiter, FakeGate(accepted(1)), FakePublisher(), batch)  # type: ignore[arg-type]
    assert limiter.admitted == [Admission(USER_ID, "198.51.100.7")]


def test_a_retry_after_a_gate_rebuild_is_not_counted_twice(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(issuing, "rebuild_gate", FakeRebuild(Rebuilt.READY))
    limiter = FakeLimiter()
    issue(FakeGate(GateDecision(GateOutcome.NEEDS_REBUILD, 0), accepted(3)), FakePublisher(), limiter=limiter)
    assert limiter.admitted == [Admission(USER_ID, None)]


# --- gate rebuild --------------------------------------------------------------------------------


def test_rebuild_of_a_missing_coupon_raises_not_found(monkeypatch: pytest.MonkeyPatch) -> None:
    rebuild = FakeRebuild(Rebuilt.NOT_FOUND)
    monkeypatch.setattr(issuing, "rebuild_gate", rebuild)
    gate, publisher = FakeGate(GateDecision(GateOutcome.NEEDS_REBUILD, 0)), FakePublisher()
    with pytest.raises(CouponNotFound) as exc_info:
        issue(gate, publisher)
    assert exc_info.value.data == {"couponId": COUPON_ID}
    assert rebuild.calls == [(None, gate, COUPON_ID)]
    assert gate.reserve_calls == [(COUPON_ID, USER_ID)]
    assert publisher.records == []


def test_a_lost_gate_of_an_ended_sale_is_answered_ended_and_never_reserves(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(issuing, "rebuild_gate", FakeRebuild(Rebuilt.ENDED))
    gate, publisher = FakeGate(GateDecision(GateOutcome.NEEDS_REBUILD, 0)), FakePublisher()
    with pytest.raises(IssueEnded):
        issue(gate, publisher)
    assert gate.reserve_calls == [(COUPON_ID, USER_ID)]
    assert publisher.records == []


def test_rebuild_then_retry_is_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    rebuild = FakeRebuild(Rebuilt.READY)
    monkeypatch.setattr(issuing, "rebuild_gate", rebuild)
    gate = FakeGate(GateDecision(GateOutcome.NEEDS_REBUILD, 0), accepted(3))
    publisher = FakePublisher()
    result = issue(gate, publisher)
    assert result.rank == 3
    assert len(rebuild.calls) == 1
    assert gate.reserve_calls == [(COUPON_ID, USER_ID)] * 2
    assert decode(publisher.records[0][1]).rank == 3


@pytest.mark.parametrize(("outcome", "error"), REJECTIONS, ids=[o.name for o, _ in REJECTIONS])
def test_rebuild_then_retry_can_still_be_rejected(
    monkeypatch: pytest.MonkeyPatch, outcome: GateOutcome, error: type[AppError]
) -> None:
    monkeypatch.setattr(issuing, "rebuild_gate", FakeRebuild(Rebuilt.READY))
    gate = FakeGate(GateDecision(GateOutcome.NEEDS_REBUILD, 0), GateDecision(outcome, 0))
    publisher = FakePublisher()
    with pytest.raises(error):
        issue(gate, publisher)
    assert publisher.records == []


def test_gate_still_missing_after_rebuild_is_redis_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    rebuild = FakeRebuild(Rebuilt.READY)
    monkeypatch.setattr(issuing, "rebuild_gate", rebuild)
    gate = FakeGate(GateDecision(GateOutcome.NEEDS_REBUILD, 0), GateDecision(GateOutcome.NEEDS_REBUILD, 0))
    publisher = FakePublisher()
    with pytest.raises(RedisUnavailable):
        issue(gate, publisher)
    assert len(rebuild.calls) == 1
    assert len(gate.reserve_calls) == 2
    assert publisher.records == []


def test_no_rebuild_when_the_gate_has_its_meta(monkeypatch: pytest.MonkeyPatch) -> None:
    rebuild = FakeRebuild(Rebuilt.READY)
    monkeypatch.setattr(issuing, "rebuild_gate", rebuild)
    issue(FakeGate(accepted(1)), FakePublisher())
    assert rebuild.calls == []


class TimingOutBatcher:
    """A batcher whose caller gave up waiting: before its ticket was sent (queue) or while its batch ran (flush)."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    def submit(self, item: IssueTicket) -> GateDecision:
        raise self.error


def test_a_ticket_never_sent_is_nothing_reserved_and_a_batch_that_outlived_its_caller_is_not_confirmed() -> None:
    from coupon.adapters.coalescer import FlushTimeout, QueueTimeout

    ticket = IssueTicket.new(COUPON_ID, USER_ID, NOW)
    with pytest.raises(IssueQueueFull) as shed:
        request_issue(None, TimingOutBatcher(QueueTimeout("queued too long")), FakeGate(), ticket, NOW)  # type: ignore[arg-type]
    # Overload is not an outage: its own code, with Retry-After, and not Kafka's E5032.
    assert (shed.value.status, shed.value.code, shed.value.retry_after) == (503, "E5036", 1)
    with pytest.raises(IssueNotConfirmed):
        request_issue(None, TimingOutBatcher(FlushTimeout("batch still running")), FakeGate(), ticket, NOW)  # type: ignore[arg-type]


# --- replica acknowledgements --------------------------------------------------------------------


def test_reservations_too_few_replicas_acknowledged_are_not_published_and_left_unconfirmed() -> None:
    gate = FakeGate(GateDecision(GateOutcome.ACCEPTED, 1, replicated=False), accepted(2))
    publisher = FakePublisher()
    late, ok = (
        IssueTicket(COUPON_ID, str(uuid.uuid4()), "t", event_id=uuid.uuid4().hex),
        IssueTicket(COUPON_ID, str(uuid.uuid4()), "t", event_id=uuid.uuid4().hex),
    )
    first, second = decide_and_publish(FakeLimiter(), gate, publisher, [late, ok])  # type: ignore[arg-type]
    assert isinstance(first, IssueNotConfirmed)
    assert isinstance(second, GateDecision) and second.rank == 2
    [(_key, value)] = publisher.records
    assert [e.user_id for e in decode_record(value).events] == [ok.user_id]
    modes = {mode: [h.user_id for h in holds] for mode, holds in gate.settle_calls}
    assert modes == {HoldMode.UNCONFIRM: [late.user_id], HoldMode.CONFIRM: [ok.user_id]}
