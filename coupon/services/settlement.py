"""The sweeper: reservations that were never confirmed are settled, to ISSUED or to released-and-fenced.

A reservation is unconfirmed when its caller was told 503 E5034 (a timeout: the record may or may not be on
Kafka), when its API worker died between the gate and the broker's ack, or when its release failed. Once it is
older than the settle bound and the consumers have drained what was on the topic, the sweeper
  1. revokes it in Redis (the gate then answers "being settled", and the API can no longer confirm it),
  2. under the coupon row lock, keeps it if the DB has its row (or a failure record), else records a cancellation
     of its event id: the fence the consumer checks under the same lock, so a late record is skipped,
  3. restores the kept ones as confirmed and releases the fenced ones (the unit is back on sale).
Then it retires the gates of ended sales with nothing left to settle (coupon.services.gate_recovery.retire_gates).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import bindparam, text

from coupon.adapters import coupons_repo
from coupon.adapters.db_session import DbSession
from coupon.adapters.gate import Gate, Hold, HoldMode
from coupon.services.gate_recovery import retire_gates

log = logging.getLogger(__name__)

# The sweep visits the coupons that ended within this long (ids_expiring_after): their gates retire in it.
RETIRE_HORIZON = timedelta(days=1)


class Progress(Protocol):
    def caught_up(self, wait_s: float) -> int: ...


@dataclass(frozen=True)
class Settled:
    coupon_id: str
    user_id: str
    event_id: str
    outcome: str  # issued | failure-record | rejected | fenced


@dataclass
class SettlementReport:
    candidates: int = 0
    lagging: int = 0  # records the consumers still had to commit: nothing was settled this time
    settled: list[Settled] = field(default_factory=list)
    retired: list[str] = field(default_factory=list)  # coupons whose ended sale's gate was deleted

    def count(self, outcome: str) -> int:
        return sum(1 for s in self.settled if s.outcome == outcome)


_LOCK = text("SELECT id FROM coupons WHERE id = :c FOR UPDATE")
_ISSUED = text("SELECT user_id FROM issued_coupons WHERE coupon_id = :c AND user_id IN :u").bindparams(
    bindparam("u", expanding=True)
)
_FAILED = text(
    "SELECT DISTINCT user_id FROM failed_issued_coupons WHERE coupon_id = :c AND is_resolved = 0 AND user_id IN :u"
).bindparams(bindparam("u", expanding=True))
_REJECTED = text("SELECT user_id FROM issue_rejections WHERE coupon_id = :c AND user_id IN :u").bindparams(
    bindparam("u", expanding=True)
)
_FENCE = text(
    "INSERT IGNORE INTO issue_cancellations (coupon_id, user_id, event_id, reason, created_at)"
    " VALUES (:c, :u, :e, 'UNCONFIRMED', :now)"
)


def settle_reservations(
    session: DbSession,
    gate: Gate,
    progress: Progress | None,
    now: datetime,
    now_ms: int,
    older_than_s: float,
    lag_wait_s: float = 10.0,
    coupon_ids: list[str] | None = None,
    limit: int = 1000,
) -> SettlementReport:
    """One sweep over the coupons still worth looking at (or `coupon_ids`); see the module docstring. Then, unless
    the consumers lag, the gates of sales that ended and have nothing left to settle are retired."""
    report = _settle(session, gate, progress, now, now_ms, older_than_s, lag_wait_s, coupon_ids, limit)
    if coupon_ids is None and not report.lagging:
        report.retired = retire_gates(
            session,
            gate,
            now,
            RETIRE_HORIZON,
            lambda: progress is None or progress.caught_up(lag_wait_s) == 0,
        )
    return report


def _settle(
    session: DbSession,
    gate: Gate,
    progress: Progress | None,
    now: datetime,
    now_ms: int,
    older_than_s: float,
    lag_wait_s: float,
    coupon_ids: list[str] | None,
    limit: int,
) -> SettlementReport:
    report = SettlementReport()
    cutoff = now_ms - int(older_than_s * 1000)
    ids = coupon_ids if coupon_ids is not None else coupons_repo.ids_expiring_after(session, now - RETIRE_HORIZON)
    session.rollback()
    found = {cid: held for cid in ids if (held := gate.unconfirmed_before(cid, cutoff, limit))}
    report.candidates = sum(len(h) for h in found.values())
    if not found:
        return report
    if progress is not None:
        # A record already on the topic gets its natural outcome from the consumer first.
        report.lagging = progress.caught_up(lag_wait_s)
        if report.lagging:
            log.info(
                "sweeper: %d unconfirmed reservations wait; the consumers are %d records behind",
                report.candidates,
                report.lagging,
            )
            return report
    for coupon_id, held in found.items():
        holds = [Hold(coupon_id, h.user_id, h.event_id or "") for h in held]
        revoked = gate.settle_many(HoldMode.REVOKE, holds, cutoff)
        # A hold already in R was revoked by a sweep that stopped half-way: this one finishes it.
        mine = [hold for hold, h, ok in zip(holds, held, revoked) if ok or h.state == "R"]
        if mine:
            report.settled.extend(_settle_coupon(session, gate, coupon_id, mine, now))
    for item in report.settled:
        log.warning(
            "sweeper settled an unconfirmed reservation: %s",
            item.outcome,
            extra={"coupon_id": item.coupon_id, "user_id": item.user_id, "event_id": item.event_id},
        )
    return report


def _settle_coupon(session: DbSession, gate: Gate, coupon_id: str, holds: list[Hold], now: datetime) -> list[Settled]:
    users = [h.user_id for h in holds]
    params = {"c": coupon_id, "u": users}
    try:
        session.execute(_LOCK, {"c": coupon_id})
        issued = {r.user_id for r in session.execute(_ISSUED, params)}
        failed = {r.user_id for r in session.execute(_FAILED, params)}
        rejected = {r.user_id for r in session.execute(_REJECTED, params)}
        outcomes: list[Settled] = []
        for hold in holds:
            if hold.user_id in issued:
                outcome = "issued"
            elif hold.user_id in failed:
                outcome = "failure-record"
            elif hold.user_id in rejected:
                outcome = "rejected"
            else:
                outcome = "fenced"
                session.execute(_FENCE, {"c": coupon_id, "u": hold.user_id, "e": hold.event_id, "now": now})
            outcomes.append(Settled(coupon_id, hold.user_id, hold.event_id, outcome))
        session.commit()
    except BaseException:
        session.rollback()
        raise
    kept = [h for h, s in zip(holds, outcomes) if s.outcome in ("issued", "failure-record")]
    gone = [h for h, s in zip(holds, outcomes) if s.outcome in ("fenced", "rejected")]
    gate.settle_many(HoldMode.RESTORE, kept)
    gate.release_many(gone)
    return outcomes
