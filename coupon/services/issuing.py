"""The issue request: one gate decision, one acknowledged Kafka record, or nothing at all."""
from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from coupon.adapters import issued_repo
from coupon.adapters.gate import Gate, GateOutcome
from coupon.adapters.kafka_publisher import IssuePublisher
from coupon.domain import IssueStatus, iso
from coupon.errors import (
    AlreadyParticipated,
    AppError,
    CouponDisabled,
    CouponNotFound,
    IssueEnded,
    IssueNotStarted,
    KafkaUnavailable,
    RedisUnavailable,
    SoldOut,
)
from coupon.messages import IssueEvent
from coupon.telemetry import ISSUE_OUTCOMES
from coupon.services.coupons import get_coupon, rebuild_gate

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


_OUTCOME_LABELS: dict[type[AppError], str] = {
    AlreadyParticipated: "duplicate",
    SoldOut: "sold_out",
    IssueNotStarted: "not_active",
    IssueEnded: "not_active",
    CouponDisabled: "not_active",
    CouponNotFound: "not_found",
    KafkaUnavailable: "unavailable",
    RedisUnavailable: "unavailable",
}


def request_issue(
    session: Session, gate: Gate, publisher: IssuePublisher, coupon_id: str, user_id: str, now: datetime,
    request_id: str | None = None,
) -> IssueAccepted:
    try:
        accepted = _request_issue(session, gate, publisher, coupon_id, user_id, now, request_id)
    except AppError as exc:
        ISSUE_OUTCOMES.labels(_OUTCOME_LABELS.get(type(exc), "error")).inc()
        raise
    ISSUE_OUTCOMES.labels("accepted").inc()
    return accepted


def _request_issue(
    session: Session, gate: Gate, publisher: IssuePublisher, coupon_id: str, user_id: str, now: datetime,
    request_id: str | None,
) -> IssueAccepted:
    decision = gate.reserve(coupon_id, user_id)
    if decision.outcome is GateOutcome.NEEDS_REBUILD:
        if not rebuild_gate(session, gate, coupon_id):
            raise CouponNotFound(data={"couponId": coupon_id})
        decision = gate.reserve(coupon_id, user_id)
        if decision.outcome is GateOutcome.NEEDS_REBUILD:
            raise RedisUnavailable("The coupon gate could not be rebuilt; try again")
    rejection = _REJECTIONS.get(decision.outcome)
    if rejection is not None:
        raise rejection(data={"couponId": coupon_id})

    requested_at = iso(now) or ""
    event = IssueEvent(
        event_id=uuid.uuid4().hex,
        coupon_id=coupon_id,
        user_id=user_id,
        rank=decision.rank,
        requested_at=requested_at,
        request_id=request_id,
    )
    try:
        publisher.publish_event(event)
    except BaseException as exc:
        # Whatever stopped the publish (broker down, timeout, a killed greenlet), the reservation goes.
        _release(gate, coupon_id, user_id)
        if isinstance(exc, AppError):
            raise
        if isinstance(exc, Exception):
            raise KafkaUnavailable() from exc
        raise
    return IssueAccepted(coupon_id, user_id, decision.rank, requested_at)


def _release(gate: Gate, coupon_id: str, user_id: str) -> None:
    try:
        gate.release(coupon_id, user_id)
    except Exception:
        log.exception("could not release the reservation of user %s on coupon %s", user_id, coupon_id)


def issue_status(session: Session, gate: Gate, coupon_id: str, user_id: str) -> IssueStatus:
    get_coupon(session, coupon_id)
    if issued_repo.find(session, coupon_id, user_id) is not None:
        return IssueStatus.ISSUED
    if issued_repo.is_rejected(session, coupon_id, user_id):
        return IssueStatus.REJECTED
    if gate.rank_of(coupon_id, user_id) is not None:
        return IssueStatus.PENDING
    return IssueStatus.NONE
