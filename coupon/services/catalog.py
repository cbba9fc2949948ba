"""Coupons: creation, the listing, and the gate's life cycle (priming on create, rebuilding from the DB).

Every writer of a coupon's gate meta holds the coupon's DB row lock while it writes: creation (the row's insert
lock), the rebuild (SELECT ... FOR UPDATE until the gate is installed) and the admin changes of
coupon.services.lifecycle (SELECT ... FOR UPDATE until the commit). So they run one at a time, and the gate ends
up with the values of the last commit.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from coupon.adapters import coupon_events_repo, coupons_repo
from coupon.adapters.db_session import DbSession
from coupon.adapters.gate import Gate, GateMeta, GateSnapshot
from coupon.domain.commands import CouponDraft, CouponPosition, ListingQuery
from coupon.domain.errors import AppError, CouponNotFound, RedisUnavailable
from coupon.domain.models import Coupon, CouponEvent
from coupon.domain.vocabulary import CouponAction, CouponPhase, CouponStatus, Role, iso, to_epoch_ms, utcnow
from coupon.services.unit_of_work import unit_of_work

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Stock:
    total: int
    reserved: int
    issued: int

    @property
    def remaining(self) -> int:
        return max(self.total - self.reserved, 0)


@dataclass(frozen=True)
class CouponWithStock:
    coupon: Coupon
    stock: Stock


@dataclass(frozen=True)
class CouponPage:
    """One page of the listing; `next` is where the next page starts (None: this was the last)."""

    items: list[CouponWithStock]
    next: CouponPosition | None


def gate_meta(coupon: Coupon) -> GateMeta:
    return GateMeta(
        total=coupon.total_quantity,
        starts_ms=to_epoch_ms(coupon.issue_starts_at),
        ends_ms=to_epoch_ms(coupon.expires_at),
        status=coupon.status.value,
    )


# The fields an admin sees and changes, by their API names: what coupon_events' `changes` record.
def recorded_fields(coupon: Coupon) -> dict[str, Any]:
    return {
        "name": coupon.name,
        "type": coupon.type.value,
        "discountType": coupon.discount_type.value,
        "discountValue": float(coupon.discount_value),
        "totalQuantity": coupon.total_quantity,
        "issueStartsAt": iso(coupon.issue_starts_at),
        "expiresAt": iso(coupon.expires_at),
        "status": coupon.status.value,
    }


def create_coupon(session: DbSession, gate: Gate, draft: CouponDraft, actor: str) -> Coupon:
    """Insert the coupon and its `created` event, prime its gate, commit: all or nothing.

    The gate is installed while the transaction still holds the new row (its insert lock), so a rebuild can only
    run after the commit. If Redis refuses, nothing is committed (503); if the commit fails after the install, the
    gate is dropped again.
    """
    coupon = Coupon(
        id=str(uuid.uuid4()),
        name=draft.name,
        type=draft.type,
        discount_type=draft.discount_type,
        discount_value=draft.discount_value,
        total_quantity=draft.total_quantity,
        issued_count=0,
        issue_starts_at=draft.issue_starts_at,
        expires_at=draft.expires_at,
        status=CouponStatus.ACTIVE,
        created_at=utcnow(),
    )
    installed = False
    try:
        with unit_of_work(session):
            coupons_repo.add(session, coupon)
            coupon_events_repo.add(
                session,
                CouponEvent(
                    coupon_id=coupon.id,
                    actor=actor,
                    at=coupon.created_at,
                    action=CouponAction.CREATED,
                    changes={f: {"from": None, "to": v} for f, v in recorded_fields(coupon).items()},
                ),
            )
            try:
                gate.install(coupon.id, GateSnapshot(meta=gate_meta(coupon), participants={}))
            except Exception as exc:
                # Nothing half-done: the transaction rolls back, the caller is told 503.
                raise RedisUnavailable() from exc
            installed = True
    except BaseException:
        if installed:
            with contextlib.suppress(Exception):
                gate.forget([coupon.id])
        raise
    return coupon


def find_by_name(session: DbSession, name: str) -> Coupon | None:
    return coupons_repo.find_by_name(session, name)


def get_coupon(session: DbSession, coupon_id: str) -> Coupon:
    coupon = coupons_repo.get(session, coupon_id)
    if coupon is None:
        raise CouponNotFound(data={"couponId": coupon_id})
    return coupon


def list_coupons(session: DbSession, gate: Gate, query: ListingQuery, role: Role, now: datetime) -> CouponPage:
    """Newest first with live stock. A USER sees only ACTIVE coupons that are live or upcoming: asking for DISABLED
    or ended ones gets an empty page, never a disabled or ended coupon."""
    status, not_ended = query.status, False
    if role is not Role.ADMIN:
        if status is CouponStatus.DISABLED or query.phase is CouponPhase.ENDED:
            return CouponPage([], None)
        status, not_ended = CouponStatus.ACTIVE, True
    rows = coupons_repo.page(
        session, now, query.limit + 1, status=status, phase=query.phase, not_ended=not_ended, after=query.after
    )
    more = len(rows) > query.limit
    rows = rows[: query.limit]
    reserved = gate.reserved_many([c.id for c in rows])
    items = []
    for coupon, counted in zip(rows, reserved):
        count = counted
        if count is None:  # the gate lost its meta (Redis data loss): rebuilt like the detail view does
            rebuild_gate(session, gate, coupon.id)
            count = gate.reserved(coupon.id)
        items.append(CouponWithStock(coupon, Stock(coupon.total_quantity, count, coupon.issued_count)))
    last = rows[-1] if more else None
    return CouponPage(items, CouponPosition(last.created_at, last.id) if last is not None else None)


def coupon_with_stock(session: DbSession, gate: Gate, coupon_id: str) -> CouponWithStock:
    coupon = get_coupon(session, coupon_id)
    if not gate.has_meta(coupon_id):
        rebuild_gate(session, gate, coupon_id)
    reserved = gate.reserved(coupon_id)
    return CouponWithStock(coupon, Stock(coupon.total_quantity, reserved, coupon.issued_count))


def rebuild_gate(session: DbSession, gate: Gate, coupon_id: str) -> bool:
    """Rebuild the gate from the DB under a lock; returns False if the coupon does not exist.

    Holders are issued rows plus unresolved failures; requests still in flight on Kafka are not
    known here, which is why the consumer's DB stock guard has the last word.

    The coupon row is read FOR UPDATE in a transaction that stays open until the gate is installed: an admin change
    (coupon.services.lifecycle) either committed before this read, so its values are installed, or waits for the
    install and then writes its values over it. A rebuild never brings back values a change replaced. Call it
    outside a unit of work: it starts its own transaction (ending the caller's read-only one).
    """
    token = uuid.uuid4().hex
    if not gate.try_lock_rebuild(coupon_id, token):
        if gate.wait_for_meta(coupon_id):
            return True
        raise RedisUnavailable("The coupon gate is being rebuilt; try again")
    try:
        if gate.has_meta(coupon_id):
            return True
        # A fresh transaction, so the holders are read from a snapshot taken after the row lock.
        session.rollback()
        with unit_of_work(session):
            coupon = coupons_repo.lock(session, coupon_id)
            if coupon is None:
                return False
            holders = coupons_repo.holders(session, coupon_id)
            gate.install(coupon_id, GateSnapshot(meta=gate_meta(coupon), participants=holders))
        log.info("gate rebuilt for coupon %s: %d holders", coupon_id, len(holders))
        return True
    finally:
        with contextlib.suppress(AppError):
            gate.unlock_rebuild(coupon_id, token)
