"""The gate after Redis lost it, and after its sale: rebuilt once all that was promised is counted, then retired.

A gate whose meta is missing (Redis emptied, restarted without its data, the gate retired) may have admitted
people whose units are nowhere in the DB yet: their records wait on the topic, or an API worker is still
publishing them. A rebuild that counted only the DB would sell those units again, and the consumer's stock guard
would then refuse someone who had been told 202. So a rebuild
  1. marks the loss (once, by Redis' clock) and refuses requests with 503 E5031 + Retry-After until every
     reservation made before it has either become a record or failed for good (`in_flight_ms`, the publisher's
     own bound);
  2. then, under the coupon row lock, reads the consumer group's committed offsets, the DB's holders (issued rows,
     unresolved failures), and every record of the coupon from those offsets to the log end;
  3. installs all of them as participants (the fenced ones excepted), so the counter starts from every unit
     promised and nobody whose record is in flight is admitted a second time.
Offsets are read before the DB snapshot: the consumer commits an offset only after its rows, so every record
before it is in the snapshot, and one consumed meanwhile is in both (a set, so counted once).
"""

from __future__ import annotations

import contextlib
import enum
import logging
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from coupon.adapters import coupons_repo
from coupon.adapters.db_session import DbSession
from coupon.adapters.gate import Gate, GateMeta, GateSnapshot
from coupon.domain.errors import AppError, KafkaUnavailable, RedisUnavailable
from coupon.domain.events import IssueEvent
from coupon.domain.models import Coupon
from coupon.domain.vocabulary import to_epoch_ms
from coupon.observability.instruments import GATE_REBUILDS
from coupon.services.unit_of_work import unit_of_work

log = logging.getLogger(__name__)

# A retired gate is deleted this long after its window ended: Redis' clock (the gate's) and this process' may
# differ by a little, and a reservation made in the gate's last millisecond must have its hold by then.
RETIRE_GRACE_S = 2.0


class Backlog(Protocol):
    """The issue records not yet committed by the consumer group (coupon.adapters.kafka_backlog.IssueBacklog)."""

    def committed(self) -> dict[int, int]: ...

    def events_since(self, committed: dict[int, int], coupon_id: str) -> list[IssueEvent]: ...


@dataclass(frozen=True)
class GateRecovery:
    """What a rebuild needs: the gate, the backlog, and how long a reservation can take to become a record."""

    gate: Gate
    backlog: Backlog
    in_flight_ms: int

    @property
    def mark_ttl_ms(self) -> int:
        # Long enough to outlive the wait and a rebuild; a mark left by a rebuild that never came expires.
        return 2 * self.in_flight_ms + 120_000


class Rebuilt(enum.Enum):
    READY = "ready"  # the gate exists: rebuilt now, or by another process meanwhile
    NOT_FOUND = "not_found"
    ENDED = "ended"  # its window is over: nothing can be admitted, the gate stays retired


def gate_meta(coupon: Coupon) -> GateMeta:
    return GateMeta(
        total=coupon.total_quantity,
        starts_ms=to_epoch_ms(coupon.issue_starts_at),
        ends_ms=to_epoch_ms(coupon.expires_at),
        status=coupon.status.value,
    )


def promised(holders: dict[str, int], in_flight: Iterable[IssueEvent], fenced: set[str]) -> dict[str, int]:
    """Everyone a unit was promised to: the DB's holders (their ranks win) and the users of the records in flight
    whose reservation was not cancelled (a user's earliest rank when the topic has several of their records)."""
    out = dict(holders)
    for event in in_flight:
        if event.event_id in fenced or event.user_id in holders:
            continue
        held = out.get(event.user_id)
        if held is None or event.rank < held:
            out[event.user_id] = event.rank
    return out


def rebuild_gate(session: DbSession, recovery: GateRecovery, coupon_id: str, now: datetime) -> Rebuilt:
    """Rebuild a missing gate once nothing from before the loss can still arrive (see the module docstring).

    RedisUnavailable (503 E5031, nothing reserved) with `retry_after` while it must wait, or when the records on
    Kafka cannot be read. Call it outside a unit of work: it starts its own transaction.
    """
    gate = recovery.gate
    coupon = coupons_repo.get(session, coupon_id)
    if coupon is None:
        return Rebuilt.NOT_FOUND
    if coupon.expires_at <= now:
        GATE_REBUILDS.labels("ended").inc()
        return Rebuilt.ENDED
    mark = gate.mark_lost(coupon_id, recovery.mark_ttl_ms)
    if mark is None:
        return Rebuilt.READY
    wait_ms = mark.wait_ms(recovery.in_flight_ms)
    if wait_ms > 0:
        GATE_REBUILDS.labels("waiting").inc()
        raise RedisUnavailable(
            "The coupon gate is being rebuilt after a Redis data loss; nothing was reserved, try again",
            data={"couponId": coupon_id},
            retry_after=wait_ms / 1000,
        )
    token = uuid.uuid4().hex
    if not gate.try_lock_rebuild(coupon_id, token):
        if gate.wait_for_meta(coupon_id):
            return Rebuilt.READY
        raise RedisUnavailable("The coupon gate is being rebuilt; try again", retry_after=1)
    try:
        if gate.has_meta(coupon_id):
            return Rebuilt.READY
        if not _install_from_db_and_topic(session, recovery, coupon_id):
            return Rebuilt.NOT_FOUND
        GATE_REBUILDS.labels("rebuilt").inc()
        return Rebuilt.READY
    finally:
        with contextlib.suppress(AppError):
            gate.unlock_rebuild(coupon_id, token)


def _install_from_db_and_topic(session: DbSession, recovery: GateRecovery, coupon_id: str) -> bool:
    """The coupon row is read FOR UPDATE in a transaction that stays open until the gate is installed: an admin
    change (coupon.services.lifecycle) either committed before this read, so its values are installed, or waits
    for the install and then writes its values over it. A rebuild never brings back values a change replaced."""
    # A fresh transaction, so the holders are read from a snapshot taken after the row lock.
    session.rollback()
    with unit_of_work(session):
        coupon = coupons_repo.lock(session, coupon_id)
        if coupon is None:
            return False
        try:
            committed = recovery.backlog.committed()
            holders = coupons_repo.holders(session, coupon_id)
            in_flight = recovery.backlog.events_since(committed, coupon_id)
        except KafkaUnavailable as exc:
            GATE_REBUILDS.labels("failed").inc()
            raise RedisUnavailable(
                "The coupon gate cannot be rebuilt while the issue topic is unreadable; nothing was reserved, try"
                " again",
                data={"couponId": coupon_id},
                retry_after=1,
            ) from exc
        fenced = coupons_repo.fenced_events(session, coupon_id, [e.event_id for e in in_flight])
        participants = promised(holders, in_flight, fenced)
        recovery.gate.install(coupon_id, GateSnapshot(meta=gate_meta(coupon), participants=participants))
    log.warning(
        "gate of coupon %s rebuilt: %d holders in the DB, %d more in flight on the topic",
        coupon_id,
        len(holders),
        len(participants) - len(holders),
    )
    return True


def retire_gates(
    session: DbSession, gate: Gate, now: datetime, horizon: timedelta, drained: Callable[[], bool]
) -> list[str]:
    """Delete the gates of sales whose window ended (RETIRE_GRACE_S ago, within `horizon`) once every hold is
    confirmed and `drained()` says the consumers have committed every record: the DB then has the last word on
    them, and their Redis memory is given back. Returns the retired ids.

    A request that comes later is answered "ended" from the DB (rebuild_gate never rebuilds an ended sale), and
    the issue status is read from the DB. A hold still unconfirmed keeps its gate until the sweeper settled it.
    """
    ended = coupons_repo.ended_between(session, now - horizon, now - timedelta(seconds=RETIRE_GRACE_S))
    session.rollback()
    done = [c for c in ended if gate.has_meta(c) and not gate.open_holds(c)]
    if not done or not drained():
        return []
    retired = []
    for coupon_id in done:
        gate.forget([coupon_id])
        retired.append(coupon_id)
    if retired:
        # The sweeper runs in an rq worker, which serves no /metrics: its job result and this line say it.
        log.info("retired the gates of %d ended sales", len(retired), extra={"coupons": retired[:20]})
    return retired
