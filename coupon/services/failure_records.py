"""The retry machinery: unresolved failure records are republished to coupon.issue until they resolve or die."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import orjson

from coupon.adapters import failures_repo
from coupon.adapters.db_session import DbSession
from coupon.adapters.failures_repo import FailureRow
from coupon.adapters.kafka_publisher import IssuePublisher, request_id_header
from coupon.domain.events import IssueEvent, UndecodableMessage, decode
from coupon.observability.request_ids import accept as accept_request_id

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RepublishReport:
    republished: int
    dead: int


def _event_of(record: FailureRow) -> IssueEvent:
    try:
        original = decode(record.payload.encode())
    except UndecodableMessage:
        data = orjson.loads(record.payload) if record.payload.startswith("{") else {}
        original = IssueEvent(
            "",
            record.coupon_id,
            record.user_id,
            int(data.get("rank", 0) or 0),
            "",
            request_id=accept_request_id(data.get("request_id")),
        )
    return IssueEvent(
        event_id=f"retry-{record.id}-{record.retry_count + 1}",
        coupon_id=record.coupon_id,
        user_id=record.user_id,
        rank=original.rank,
        requested_at=original.requested_at,
        retry_of=int(record.id),
        request_id=original.request_id,
    )


def _publish(publisher: IssuePublisher, record: FailureRow, event: IssueEvent) -> None:
    publisher.publish(event.user_id, event.to_bytes(), request_id_header(event))
    # The same request id the API answered with: the consumer logs it again when the retry lands.
    log.info(
        "failure record %s republished (retry %d)",
        record.id,
        record.retry_count + 1,
        extra={
            "request_id": event.request_id,
            "failure_id": int(record.id),
            "event_id": event.event_id,
            "coupon_id": event.coupon_id,
            "user_id": event.user_id,
        },
    )


def republish_failed(
    session: DbSession,
    publisher: IssuePublisher,
    max_retries: int,
    now: datetime,
    batch_size: int = 500,
    settle_seconds: float = 10.0,
    on_batch: Callable[[int], None] | None = None,
) -> RepublishReport:
    """One pass: mark the exhausted records DEAD, republish the rest in batches, raising retry_count."""
    dead = failures_repo.mark_dead(session, max_retries, now - timedelta(seconds=settle_seconds))
    session.commit()
    if dead:
        log.error("%d failure records are DEAD after %d retries", dead, max_retries)
    republished = 0
    while True:
        records = failures_repo.claim_pending(session, max_retries, batch_size)
        if not records:
            session.commit()
            break
        try:
            for record in records:
                _publish(publisher, record, _event_of(record))
        except BaseException:
            session.rollback()  # nothing counted as retried unless its record is on the topic
            raise
        failures_repo.mark_retried(session, [int(r.id) for r in records], now)
        session.commit()
        republished += len(records)
        if on_batch is not None:
            on_batch(len(records))
        if len(records) < batch_size:
            break
    if republished:
        log.info("republished %d failure records", republished)
    return RepublishReport(republished=republished, dead=dead)


def retry_one(session: DbSession, publisher: IssuePublisher, failure_id: int, now: datetime) -> bool:
    """Operator's retry now, also of a DEAD record; False if there is no such unresolved record.

    The record is revived and committed before the publish: holding its row lock while the consumer
    tries to resolve it would deadlock. If the publish fails, the record is PENDING and the periodic
    job takes it from there.
    """
    record = failures_repo.get(session, failure_id)
    if record is None or record.is_resolved:
        session.rollback()
        return False
    event = _event_of(record)
    failures_repo.revive(session, failure_id)
    failures_repo.mark_retried(session, [failure_id], now)
    session.commit()
    _publish(publisher, record, event)
    return True


@dataclass(frozen=True)
class FailureView:
    counts: dict[str, int]
    items: list[FailureRow]


def failure_counts(session: DbSession) -> dict[str, int]:
    """Failure records by status."""
    return failures_repo.counts(session)


def failure_view(session: DbSession, status: str | None, limit: int) -> FailureView:
    """What the admin failure view shows: counts by status and the newest records."""
    return FailureView(failures_repo.counts(session), failures_repo.listing(session, status, limit))
