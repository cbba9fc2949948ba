"""Coupon administration and the gate's life cycle (priming on create, rebuilding from the DB)."""

from __future__ import annotations

import contextlib
import logging
import uuid
from dataclasses import dataclass

from coupon.adapters import coupons_repo
from coupon.adapters.db_session import DbSession
from coupon.adapters.gate import Gate, GateMeta, GateSnapshot
from coupon.domain.commands import CouponDraft
from coupon.domain.errors import AppError, CouponNotFound, RedisUnavailable
from coupon.domain.models import Coupon
from coupon.domain.vocabulary import CouponStatus, to_epoch_ms
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


def gate_meta(coupon: Coupon) -> GateMeta:
    return GateMeta(
        total=coupon.total_quantity,
        starts_ms=to_epoch_ms(coupon.issue_starts_at),
        ends_ms=to_epoch_ms(coupon.expires_at),
        status=coupon.status.value,
    )


def create_coupon(session: DbSession, gate: Gate, draft: CouponDraft) -> Coupon:
    """Insert the coupon, then prime its gate; if Redis refuses, the coupon is removed again (503)."""
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
    )
    with unit_of_work(session):
        coupons_repo.add(session, coupon)
    try:
        gate.install(coupon.id, GateSnapshot(meta=gate_meta(coupon), participants={}))
    except Exception as exc:
        # Nothing half-done: a coupon without a gate would be rebuilt later, but the caller was told 503.
        with unit_of_work(session):
            coupons_repo.remove(session, coupon.id)
        raise RedisUnavailable() from exc
    return coupon


def find_by_name(session: DbSession, name: str) -> Coupon | None:
    return coupons_repo.find_by_name(session, name)


def get_coupon(session: DbSession, coupon_id: str) -> Coupon:
    coupon = coupons_repo.get(session, coupon_id)
    if coupon is None:
        raise CouponNotFound(data={"couponId": coupon_id})
    return coupon


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
    """
    token = uuid.uuid4().hex
    if not gate.try_lock_rebuild(coupon_id, token):
        if gate.wait_for_meta(coupon_id):
            return True
        raise RedisUnavailable("The coupon gate is being rebuilt; try again")
    try:
        if gate.has_meta(coupon_id):
            return True
        session.expire_all()
        coupon = coupons_repo.get(session, coupon_id)
        if coupon is None:
            return False
        holders = coupons_repo.holders(session, coupon_id)
        gate.install(coupon_id, GateSnapshot(meta=gate_meta(coupon), participants=holders))
        log.info("gate rebuilt for coupon %s: %d holders", coupon_id, len(holders))
        return True
    finally:
        with contextlib.suppress(AppError):
            gate.unlock_rebuild(coupon_id, token)
