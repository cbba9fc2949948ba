"""The consumer's side of issuance: a chunk of accepted requests becomes issued rows in one transaction.

The coupon row is locked, so per coupon only one transaction at a time decides; rows are inserted with
INSERT IGNORE against UNIQUE(coupon_id, user_id); issued_count rises by the rows really inserted and never
past total_quantity. Whatever does not fit is recorded as rejected.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import bindparam, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from coupon.adapters import mysql_errors
from coupon.adapters.db_session import DbSession
from coupon.adapters.locks import LockBusy, PairLocks
from coupon.adapters.mysql_errors import error_number
from coupon.domain.events import IssueEvent
from coupon.observability.instruments import STOCK_GUARD_REJECTIONS

if TYPE_CHECKING:
    from sqlalchemy import CursorResult

log = logging.getLogger(__name__)


class TransientFailure(Exception):
    """The batch could not be handled now (DB or Redis unreachable, locks busy): do not commit offsets."""


@dataclass
class BatchReport:
    inserted: int = 0
    duplicates: int = 0
    rejected: int = 0
    failed: int = 0
    resolved: int = 0
    cancelled: int = 0
    failures: list[tuple[IssueEvent, str]] = field(default_factory=list)
    # What became of each event, for the consumer's per-event log line: (event, result, failure record id).
    outcomes: list[tuple[IssueEvent, str, int | None]] = field(default_factory=list)
    # Transactions the events were persisted in (persist_in_chunks).
    chunks: int = 0

    def add(self, other: BatchReport) -> None:
        self.inserted += other.inserted
        self.duplicates += other.duplicates
        self.rejected += other.rejected
        self.failed += other.failed
        self.resolved += other.resolved
        self.cancelled += other.cancelled
        self.failures.extend(other.failures)
        self.outcomes.extend(other.outcomes)


_LOCK_COUPONS = text(
    "SELECT id, total_quantity, issued_count FROM coupons WHERE id IN :ids ORDER BY id FOR UPDATE"
).bindparams(bindparam("ids", expanding=True))
_EXISTING = text("SELECT user_id FROM issued_coupons WHERE coupon_id = :coupon_id AND user_id IN :users").bindparams(
    bindparam("users", expanding=True)
)
_FENCED_COUPONS = text("SELECT DISTINCT coupon_id FROM issue_cancellations WHERE coupon_id IN :ids").bindparams(
    bindparam("ids", expanding=True)
)
_FENCED_EVENTS = text(
    "SELECT event_id FROM issue_cancellations WHERE coupon_id = :coupon_id AND event_id IN :events"
).bindparams(bindparam("events", expanding=True))
_OPEN_FAILURES = text("SELECT 1 FROM failed_issued_coupons WHERE coupon_id = :coupon_id AND is_resolved = 0 LIMIT 1")
_RAISE_COUNT = text("UPDATE coupons SET issued_count = issued_count + :n WHERE id = :coupon_id")
_RESOLVE = text(
    "UPDATE failed_issued_coupons SET status = 'RESOLVED', is_resolved = 1, resolved_at = :now"
    " WHERE is_resolved = 0 AND coupon_id = :coupon_id AND user_id IN :users"
).bindparams(bindparam("users", expanding=True))


def _dedupe(events: list[IssueEvent]) -> dict[str, list[IssueEvent]]:
    """Group by coupon, one event per user (the earliest rank wins), sorted by rank."""
    by_pair: dict[tuple[str, str], IssueEvent] = {}
    for event in events:
        key = (event.coupon_id, event.user_id)
        held = by_pair.get(key)
        if held is None or event.rank < held.rank:
            by_pair[key] = event
    grouped: dict[str, list[IssueEvent]] = {}
    for event in by_pair.values():
        grouped.setdefault(event.coupon_id, []).append(event)
    for group in grouped.values():
        group.sort(key=lambda e: e.rank)
    return grouped


def _insert_many(session: DbSession, sql: str, rows: list[tuple[object, ...]]) -> int:
    """One multi-row INSERT IGNORE; returns rows inserted.

    The VALUES list is built with the driver's own escaping, each distinct value escaped once: a batch repeats
    the coupon id and the timestamp in every row, and escaping them per row was a fifth of the consumer's time.
    """
    if not rows:
        return 0
    connection = session.connection()
    dbapi_connection = connection.connection.dbapi_connection
    assert dbapi_connection is not None  # None only once the pool has invalidated it; this one was just checked out
    escape: Callable[[object], str] = dbapi_connection.escape  # PyMySQL's Connection.escape
    literals: dict[object, str] = {}

    def literal(value: object) -> str:
        try:
            return literals[value]
        except KeyError:
            text_ = literals[value] = escape(value)
            return text_

    values = ",".join("(" + ",".join(literal(v) for v in row) + ")" for row in rows)
    # The driver still runs the statement through %-formatting (with no arguments): keep a literal % intact.
    result = connection.exec_driver_sql(f"{sql} VALUES {values}".replace("%", "%%"))
    return int(result.rowcount or 0)


def _has_open_failures(session: DbSession, coupon_id: str) -> bool:
    return session.execute(_OPEN_FAILURES, {"coupon_id": coupon_id}).first() is not None


def _without_fenced(
    session: DbSession, events: list[IssueEvent], coupon_ids: list[str], report: BatchReport
) -> list[IssueEvent]:
    """Drop the events of reservations the sweeper cancelled; run under the coupon row locks it takes too."""
    fenced_coupons = [row.coupon_id for row in session.execute(_FENCED_COUPONS, {"ids": coupon_ids})]
    if not fenced_coupons:  # the usual case: one cheap query, nothing to drop
        return events
    fenced: set[tuple[str, str]] = set()
    for coupon_id in fenced_coupons:
        ids = [e.event_id for e in events if e.coupon_id == coupon_id]
        fenced.update(
            (coupon_id, r.event_id) for r in session.execute(_FENCED_EVENTS, {"coupon_id": coupon_id, "events": ids})
        )
    kept = [e for e in events if (e.coupon_id, e.event_id) not in fenced]
    if len(kept) != len(events):
        dropped = [e for e in events if (e.coupon_id, e.event_id) in fenced]
        log.warning("skipped %d records of cancelled reservations", len(dropped))
        report.cancelled += len(dropped)
        report.outcomes.extend((e, "cancelled", None) for e in dropped)
    return kept


def persist_in_one_transaction(session: DbSession, events: list[IssueEvent], now: datetime) -> BatchReport:
    """All events or none; raises the DB's error on any failure (the caller decides what it means)."""
    report = BatchReport()
    try:
        coupon_ids = sorted({e.coupon_id for e in events})
        coupons = {row.id: row for row in session.execute(_LOCK_COUPONS, {"ids": coupon_ids})}
        events = _without_fenced(session, events, coupon_ids, report)
        grouped = _dedupe(events)
        duplicates = len(events) - sum(len(g) for g in grouped.values())
        report.duplicates += duplicates
        if duplicates:
            kept = {id(e) for group in grouped.values() for e in group}
            report.outcomes.extend((e, "duplicate", None) for e in events if id(e) not in kept)
        for coupon_id in sorted(grouped):
            group = grouped[coupon_id]
            coupon = coupons.get(coupon_id)
            if coupon is None:
                report.rejected += _reject(session, group, "UNKNOWN_COUPON", now)
                report.outcomes.extend((e, "rejected", None) for e in group)
                continue
            users = [e.user_id for e in group]
            existing = {r.user_id for r in session.execute(_EXISTING, {"coupon_id": coupon_id, "users": users})}
            fresh = [e for e in group if e.user_id not in existing]
            report.duplicates += len(group) - len(fresh)
            room = max(coupon.total_quantity - coupon.issued_count, 0)
            take, overflow = fresh[:room], fresh[room:]
            inserted = _insert_many(
                session,
                "INSERT IGNORE INTO issued_coupons (coupon_id, user_id, `rank`, issued_at, used)",
                [(coupon_id, e.user_id, e.rank, now, 0) for e in take],
            )
            if inserted:
                session.execute(_RAISE_COUNT, {"n": inserted, "coupon_id": coupon_id})
            report.inserted += inserted
            report.duplicates += len(take) - inserted
            # INSERT IGNORE says how many, not which: a shortfall (a row that appeared since the check) is ambiguous.
            taken = "inserted" if inserted == len(take) else "inserted_or_duplicate"
            report.outcomes.extend((e, "duplicate", None) for e in group if e.user_id in existing)
            report.outcomes.extend((e, taken, None) for e in take)
            if overflow:
                report.rejected += _reject(session, overflow, "SOLD_OUT", now)
                report.outcomes.extend((e, "rejected", None) for e in overflow)
            refused = {e.user_id for e in overflow}
            done = [e.user_id for e in group if e.user_id not in refused]
            if done and _has_open_failures(session, coupon_id):
                result = session.execute(_RESOLVE, {"now": now, "coupon_id": coupon_id, "users": done})
                # An UPDATE runs into a CursorResult (rowcount); Session.execute is typed as returning a Result.
                report.resolved += int(cast("CursorResult[Any]", result).rowcount or 0)
        session.commit()
    except BaseException:
        session.rollback()
        raise
    return report


def _reject(session: DbSession, events: list[IssueEvent], reason: str, now: datetime) -> int:
    # Each of these was answered 202: the gate admitted more than the stock, a broken promise (invariant 3).
    log.error(
        "DB stock guard rejected %d accepted requests (%s): the gate admitted more than the stock",
        len(events),
        reason,
        extra={"coupon_id": events[0].coupon_id, "users": [e.user_id for e in events[:20]]},
    )
    STOCK_GUARD_REJECTIONS.inc(len(events))
    _insert_many(
        session,
        "INSERT IGNORE INTO issue_rejections (coupon_id, user_id, `rank`, reason, created_at)",
        [(e.coupon_id, e.user_id, e.rank, reason, now) for e in events],
    )
    # Pending failure records of these pairs are settled too: the request has its final answer.
    for event in events:
        session.execute(_RESOLVE, {"now": now, "coupon_id": event.coupon_id, "users": [event.user_id]})
    return len(events)


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated:
            return True
        return exc.orig is not None and error_number(exc.orig) in mysql_errors.TRANSIENT
    # The pool could not hand out a connection in time: the DB, not the message.
    return isinstance(exc, PoolTimeout)


def record_failure(session: DbSession, event: IssueEvent, error: str, now: datetime) -> int | None:
    """Write (or refresh) the failed_issued_coupons row of this request and return its id; the retry job
    takes it from there. The payload keeps the request id, so a retried record logs the same one."""
    error = error[:2000]
    failure_id: int | None
    try:
        if event.retry_of is not None:
            failure_id = event.retry_of
            session.execute(
                text("UPDATE failed_issued_coupons SET error = :error WHERE id = :id"),
                {"error": error, "id": event.retry_of},
            )
        else:
            pending = session.execute(
                text(
                    "SELECT id FROM failed_issued_coupons WHERE coupon_id = :c AND user_id = :u"
                    " AND is_resolved = 0 AND status = 'PENDING' LIMIT 1"
                ),
                {"c": event.coupon_id, "u": event.user_id},
            ).first()
            if pending:
                failure_id = int(pending.id)
                session.execute(
                    text("UPDATE failed_issued_coupons SET error = :error WHERE id = :id"),
                    {"error": error, "id": pending.id},
                )
            else:
                result = session.execute(
                    text(
                        "INSERT INTO failed_issued_coupons (coupon_id, user_id, payload, error, retry_count,"
                        " is_resolved, status, created_at) VALUES (:c, :u, :payload, :error, 0, 0, 'PENDING', :now)"
                    ),
                    {
                        "c": event.coupon_id,
                        "u": event.user_id,
                        "payload": event.to_bytes().decode(),
                        "error": error,
                        "now": now,
                    },
                )
                failure_id = getattr(result, "lastrowid", None)
        session.commit()
    except BaseException:
        session.rollback()
        raise
    return failure_id


def persist_batch(
    session: DbSession, locks: PairLocks, events: list[IssueEvent], now: datetime, lock_wait_s: float = 10.0
) -> BatchReport:
    """Persist a batch; per-message failures become failure records; raises TransientFailure to retry later."""
    if not events:
        return BatchReport()
    token = uuid.uuid4().hex
    pairs = [(e.coupon_id, e.user_id) for e in events]
    try:
        locks.acquire(pairs, token, wait_s=lock_wait_s)
    except LockBusy as exc:
        raise TransientFailure(str(exc)) from exc
    except Exception as exc:  # Redis unreachable: the messages stay on Kafka until it returns
        raise TransientFailure(f"pair locks unavailable: {exc}") from exc
    try:
        try:
            return persist_in_one_transaction(session, events, now)
        except Exception as exc:
            if is_transient(exc) or not _db_reachable(session):
                raise TransientFailure(f"database unavailable: {exc}") from exc
            log.warning("batch of %d failed (%s); persisting one by one", len(events), _short(exc))
        return _one_by_one(session, events, now)
    finally:
        try:
            locks.release(pairs, token)
        except Exception:
            log.warning("could not release pair locks; they expire on their own")


def _one_by_one(session: DbSession, events: list[IssueEvent], now: datetime) -> BatchReport:
    total = BatchReport()
    for event in events:
        try:
            report = persist_in_one_transaction(session, [event], now)
        except Exception as exc:
            if is_transient(exc) or not _db_reachable(session):
                raise TransientFailure(f"database unavailable: {exc}") from exc
            reason = _short(exc)
            try:
                failure_id = record_failure(session, event, reason, now)
            except Exception as rec_exc:
                raise TransientFailure(f"could not record a failure: {rec_exc}") from rec_exc
            total.failed += 1
            total.failures.append((event, reason))
            total.outcomes.append((event, "failed", failure_id))
            continue
        total.add(report)
    return total


def plan_chunks(events: list[IssueEvent], size: int) -> list[list[IssueEvent]]:
    """Split a poll's events into transactions of at most `size` events.

    A poll that fits is one chunk, in its own order (the fast path, unchanged). A bigger one is ordered by
    (coupon, rank) first: when the DB stock guard has to refuse someone, the earlier ranks of the whole poll
    win, not those of whichever partition came first, and one coupon's events share as few chunks as possible.
    """
    if size < 1:
        raise ValueError(f"chunk size must be at least 1, got {size}")
    if len(events) <= size:
        return [events] if events else []
    ordered = sorted(events, key=lambda e: (e.coupon_id, e.rank))
    return [ordered[start : start + size] for start in range(0, len(ordered), size)]


def persist_in_chunks(
    session: DbSession,
    locks: PairLocks,
    events: list[IssueEvent],
    now: datetime,
    chunk_events: int,
    lock_wait_s: float = 10.0,
    persist: Callable[..., BatchReport] | None = None,
) -> BatchReport:
    """Persist a poll chunk by chunk, each its own transaction and pair locks (persist_batch).

    A TransientFailure of any chunk propagates: the caller rewinds the whole poll and commits nothing, and the
    chunks already durable are persisted again later, which INSERT IGNORE, UNIQUE(coupon_id, user_id) and the
    stock guard make harmless.
    """
    persist = persist or persist_batch
    total = BatchReport()
    for chunk in plan_chunks(events, chunk_events):
        total.add(persist(session, locks, chunk, now, lock_wait_s=lock_wait_s))
        total.chunks += 1
    return total


def _db_reachable(session: DbSession) -> bool:
    try:
        session.rollback()
        session.execute(text("SELECT 1"))
        session.rollback()
        return True
    except Exception:
        return False


def _short(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None)
    return f"{type(orig or exc).__name__}: {orig or exc}"[:500]
