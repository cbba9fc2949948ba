"""The issue request: one gate decision, one acknowledged Kafka record, or nothing at all."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Protocol, cast

from coupon.adapters import issued_repo
from coupon.adapters.coalescer import QueueTimeout
from coupon.adapters.db_session import DbSession
from coupon.adapters.gate import Gate, GateDecision, GateOutcome, GateRequest, Hold, HoldMode
from coupon.adapters.kafka_publisher import IssuePublisher
from coupon.adapters.rate_limit import Admission, RateLimiter
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
    TokenRevoked,
)
from coupon.domain.events import IssueEvent
from coupon.domain.identifiers import new_event_id
from coupon.domain.vocabulary import IssueStatus, iso
from coupon.observability.instruments import ISSUE_OUTCOMES
from coupon.services.catalog import get_coupon
from coupon.services.gate_recovery import GateRecovery, Rebuilt, rebuild_gate
from coupon.services.refusals import refusal

log = logging.getLogger(__name__)

_REJECTIONS: dict[GateOutcome, type[AppError]] = {
    GateOutcome.DUPLICATE: AlreadyParticipated,
    GateOutcome.SOLD_OUT: SoldOut,
    GateOutcome.NOT_STARTED: IssueNotStarted,
    GateOutcome.ENDED: IssueEnded,
    GateOutcome.DISABLED: CouponDisabled,
}


@dataclass(frozen=True)
class IssueAccepted:
    coupon_id: str
    user_id: str
    rank: int
    requested_at: str


@dataclass(frozen=True, slots=True)
class IssueTicket:
    """One issue request waiting for its batch; `address` is the client's, for the per-address limit; `jti` names the
    access token (its revocation marker is checked in the limiter call); `admin` picks the admin limit.

    `token` makes the request idempotent at the gate (the client's Idempotency-Key, or the event id);
    `event_id` is the id its Kafka record gets if this request makes the reservation.
    """

    coupon_id: str
    user_id: str
    requested_at: str
    request_id: str | None = None
    address: str | None = None
    admit: bool = True  # False when the limiter already counted this request (a retry after a gate rebuild)
    token: str = ""
    event_id: str = ""
    jti: str | None = None
    admin: bool = False

    @classmethod
    def new(
        cls,
        coupon_id: str,
        user_id: str,
        now: datetime,
        *,
        request_id: str | None = None,
        address: str | None = None,
        idempotency_key: str | None = None,
        jti: str | None = None,
        admin: bool = False,
    ) -> IssueTicket:
        """A request as it arrives: its event id drawn, and its gate token the client's key or else that id."""
        event_id = new_event_id()
        token = "k" + idempotency_key if idempotency_key else event_id
        return cls(
            coupon_id,
            user_id,
            iso(now) or "",
            request_id,
            address,
            token=token,
            event_id=event_id,
            jti=jti,
            admin=admin,
        )


class IssueBatcher(Protocol):
    """Runs a ticket in the next batch of decide_and_publish (coupon.adapters.coalescer.Coalescer)."""

    def submit(self, item: IssueTicket) -> GateDecision: ...


_OUTCOME_LABELS: dict[type[AppError], str] = {
    AlreadyParticipated: "duplicate",
    SoldOut: "sold_out",
    IssueNotStarted: "not_active",
    IssueEnded: "not_active",
    CouponDisabled: "not_active",
    CouponNotFound: "not_found",
    KafkaUnavailable: "unavailable",
    RedisUnavailable: "unavailable",
    IssueQueueFull: "overloaded",
    IssueNotConfirmed: "unconfirmed",
    RateLimited: "rate_limited",
    AccountDeleted: "account_deleted",
    TokenRevoked: "token_revoked",
}
# Resolved once: a labels() lookup per request is measurable on the hot path.
_COUNTERS = {label: ISSUE_OUTCOMES.labels(label) for label in {*_OUTCOME_LABELS.values(), "accepted", "error"}}


def decide_and_publish(
    limiter: RateLimiter, gate: Gate, publisher: IssuePublisher, tickets: list[IssueTicket]
) -> list[GateDecision | BaseException]:
    """One batch of concurrent requests: one rate-limit round trip, one gate round trip, one Kafka record for the
    accepted ones, one round trip to confirm their holds.

    The limiter runs here rather than before the view, so its Redis round trip is shared by the whole batch; a
    refused request never reaches the gate. Each caller's decision is returned only after the broker acknowledged
    the record holding its request. A publish that provably never reached a broker is undone before anyone hears
    about it (503 E5032, invariant 4); one that may still be appended keeps its reservation, unconfirmed, for the
    consumer or the sweeper to settle (503 E5034).
    """
    counted = [i for i, t in enumerate(tickets) if t.admit]
    verdicts = limiter.admit_many(
        [Admission(tickets[i].user_id, tickets[i].address, tickets[i].jti, tickets[i].admin) for i in counted]
    )
    refused = {i: error for i, verdict in zip(counted, verdicts) if (error := refusal(verdict)) is not None}
    admitted = [i for i in range(len(tickets)) if i not in refused]
    requests = [
        GateRequest(
            tickets[i].coupon_id, tickets[i].user_id, tickets[i].token or tickets[i].event_id, tickets[i].event_id
        )
        for i in admitted
    ]
    reserved = gate.reserve_many(requests) if admitted else []
    decided_at = time.monotonic()
    by_index: dict[int, GateDecision | BaseException] = {**dict(zip(admitted, reserved)), **refused}
    decisions = [by_index[i] for i in range(len(tickets))]
    accepted = [i for i, d in enumerate(decisions) if isinstance(d, GateDecision) and d.outcome is GateOutcome.ACCEPTED]
    accepted = _hold_back_unreplicated(gate, tickets, decisions, accepted)
    if not accepted:
        return decisions
    events, holds = [], []
    for i in accepted:
        # `accepted` holds only the indexes of GateDecisions.
        ticket, decision = tickets[i], cast(GateDecision, decisions[i])
        event_id = decision.event_id
        events.append(
            IssueEvent(
                event_id,
                ticket.coupon_id,
                ticket.user_id,
                decision.rank,
                ticket.requested_at,
                request_id=ticket.request_id,
            )
        )
        holds.append(Hold(ticket.coupon_id, ticket.user_id, event_id))
    try:
        publisher.publish_events(events, decided_at)
    except Exception as exc:
        failure = _publish_failure(gate, holds, exc)
        for i in accepted:
            decisions[i] = failure
        return decisions
    # 202 only for a confirmed hold: once confirmed the sweeper can no longer fence it, and a hold the sweeper is
    # already settling (it waited past the settle bound) is answered as unknown, which it is.
    try:
        confirmed = gate.settle_many(HoldMode.CONFIRM, holds)
    except Exception as exc:
        confirmed = [False] * len(holds)
        log.warning("could not confirm %d acknowledged holds (%s); answered as not confirmed", len(holds), exc)
    for i, ok in zip(accepted, confirmed):
        if not ok:
            decisions[i] = IssueNotConfirmed(data={"couponId": tickets[i].coupon_id})
    return decisions


def _hold_back_unreplicated(
    gate: Gate, tickets: list[IssueTicket], decisions: list[GateDecision | BaseException], accepted: list[int]
) -> list[int]:
    """The accepted requests whose reservation too few replicas acknowledged are not published: a promoted replica
    could lack them and sell their units again. Their holds become unconfirmed (the same user may retry at once; the
    sweeper settles the rest) and they are answered 503 E5034. Returns the accepted requests that may go on."""
    late = [i for i in accepted if not cast(GateDecision, decisions[i]).replicated]
    if not late:
        return accepted
    log.warning("%d reservations were not acknowledged by enough Redis replicas in time; not published", len(late))
    holds = [Hold(tickets[i].coupon_id, tickets[i].user_id, cast(GateDecision, decisions[i]).event_id) for i in late]
    _settle_quietly(gate, HoldMode.UNCONFIRM, holds)
    for i in late:
        decisions[i] = IssueNotConfirmed(data={"couponId": tickets[i].coupon_id})
    held_back = set(late)
    return [i for i in accepted if i not in held_back]


def _publish_failure(gate: Gate, holds: list[Hold], exc: Exception) -> AppError:
    """What the callers of a failed publish are told, after the reservations were undone or marked unknown."""
    if isinstance(exc, KafkaUnavailable):  # the record never left: nothing can turn up later
        try:
            gate.release_many(holds)
            return exc
        except Exception:
            log.exception("could not release %d reservations after a failed publish; the sweeper will", len(holds))
            return _unconfirmed(exc)
    _settle_quietly(gate, HoldMode.UNCONFIRM, holds)
    return exc if isinstance(exc, IssueNotConfirmed) else _unconfirmed(exc)


def _unconfirmed(cause: BaseException) -> IssueNotConfirmed:
    error = IssueNotConfirmed()
    error.__cause__ = cause
    return error


def _settle_quietly(gate: Gate, mode: HoldMode, holds: list[Hold]) -> None:
    # Best effort: a hold left unconfirmed is settled later by the sweeper (its record is on Kafka or it is not).
    try:
        gate.settle_many(mode, holds)
    except Exception as exc:
        log.warning("could not %s %d holds (%s); the sweeper settles them", mode.value, len(holds), exc)


def request_issue(
    session: DbSession, batcher: IssueBatcher, recovery: GateRecovery, ticket: IssueTicket, now: datetime
) -> IssueAccepted:
    """Admit, decide and publish one request (in the next batch); an AppError names every way it can fail.

    With an idempotency key, a retry of the same request (same user, coupon and key) is answered as the first was.
    """
    try:
        accepted = _request_issue(session, batcher, recovery, ticket, now)
    except AppError as exc:
        _COUNTERS[_OUTCOME_LABELS.get(type(exc), "error")].inc()
        raise
    _COUNTERS["accepted"].inc()
    return accepted


def _request_issue(
    session: DbSession, batcher: IssueBatcher, recovery: GateRecovery, ticket: IssueTicket, now: datetime
) -> IssueAccepted:
    coupon_id = ticket.coupon_id
    decision = _submit(batcher, ticket)
    if decision.outcome is GateOutcome.NEEDS_REBUILD:
        # Lost or retired: answered from the DB, or 503 E5031 + Retry-After while what was in flight is waited out.
        rebuilt = rebuild_gate(session, recovery, coupon_id, now)
        if rebuilt is Rebuilt.NOT_FOUND:
            raise CouponNotFound(data={"couponId": coupon_id})
        if rebuilt is Rebuilt.ENDED:
            raise IssueEnded(data={"couponId": coupon_id})
        decision = _submit(batcher, replace(ticket, admit=False))
        if decision.outcome is GateOutcome.NEEDS_REBUILD:
            raise RedisUnavailable("The coupon gate could not be rebuilt; try again")
    if decision.outcome is GateOutcome.SETTLING:
        raise IssueNotConfirmed(data={"couponId": coupon_id})
    rejection = _REJECTIONS.get(decision.outcome)
    if rejection is not None:
        raise rejection(data={"couponId": coupon_id})
    return IssueAccepted(coupon_id, ticket.user_id, decision.rank, ticket.requested_at)


def _submit(batcher: IssueBatcher, ticket: IssueTicket) -> GateDecision:
    # A ticket that waited too long in the queue is dropped unsent (nothing reserved). One that was sent but whose
    # batch outlived the caller's wait may still have reserved and published: its outcome is unknown.
    try:
        return batcher.submit(ticket)
    except QueueTimeout:
        raise IssueQueueFull() from None
    except TimeoutError as exc:
        raise _unconfirmed(exc) from exc


def issue_status(session: DbSession, gate: Gate, coupon_id: str, user_id: str) -> IssueStatus:
    get_coupon(session, coupon_id)
    if issued_repo.find(session, coupon_id, user_id) is not None:
        return IssueStatus.ISSUED
    if issued_repo.is_rejected(session, coupon_id, user_id):
        return IssueStatus.REJECTED
    if gate.rank_of(coupon_id, user_id) is not None:
        return IssueStatus.PENDING
    # Accepted and awaiting a retry (or an operator, if DEAD), even while Redis has lost the reservation.
    if issued_repo.holds_failure(session, coupon_id, user_id):
        return IssueStatus.PENDING
    return IssueStatus.NONE
