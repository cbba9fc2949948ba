"""Coupons: creation (priming the gate), the listing and the detail with live stock.

Every writer of a coupon's gate meta holds the coupon's DB row lock while it writes: creation (the row's insert
lock), the rebuild (coupon.services.gate_recovery, SELECT ... FOR UPDATE until the gate is installed) and the admin
changes of coupon.services.lifecycle (SELECT ... FOR UPDATE until the commit). So they run one at a time, and the
gate ends up with the values of the last commit.
"""

from __future__ import annotations

import contextlib
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from coupon.adapters import coupon_events_repo, coupons_repo
from coupon.adapters.db_session import DbSession
from coupon.adapters.gate import Gate, GateSnapshot
from coupon.domain.commands import CouponDraft, CouponPosition, ListingQuery
from coupon.domain.errors import CouponNotFound, RedisUnavailable
from coupon.domain.models import Coupon, CouponEvent
from coupon.domain.vocabulary import CouponAction, CouponPhase, CouponStatus, Role, iso, utcnow
from coupon.services.gate_recovery import GateRecovery, Rebuilt, gate_meta, rebuild_gate
from coupon.services.unit_of_work import unit_of_work


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


def list_coupons(
    session: DbSession, recovery: GateRecovery, query: ListingQuery, role: Role, now: datetime
) -> CouponPage:
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
    reserved = recovery.gate.reserved_many([c.id for c in rows])
    items = []
    for coupon, counted in zip(rows, reserved):
        count = counted if counted is not None else _reserved_without_gate(session, recovery, coupon.id, now)
        items.append(CouponWithStock(coupon, Stock(coupon.total_quantity, count, coupon.issued_count)))
    last = rows[-1] if more else None
    return CouponPage(items, CouponPosition(last.created_at, last.id) if last is not None else None)


def coupon_with_stock(session: DbSession, recovery: GateRecovery, coupon_id: str, now: datetime) -> CouponWithStock:
    coupon = get_coupon(session, coupon_id)
    [counted] = recovery.gate.reserved_many([coupon_id])
    reserved = counted if counted is not None else _reserved_without_gate(session, recovery, coupon_id, now)
    return CouponWithStock(coupon, Stock(coupon.total_quantity, reserved, coupon.issued_count))


def _reserved_without_gate(session: DbSession, recovery: GateRecovery, coupon_id: str, now: datetime) -> int:
    """The gate lost its meta (Redis data loss) or was retired: rebuilt if it may be now, as an issue request would;
    while it waits for what was in flight (and after its sale), reads count the DB's holders instead."""
    try:
        if rebuild_gate(session, recovery, coupon_id, now) is Rebuilt.READY:
            return recovery.gate.reserved(coupon_id)
    except RedisUnavailable as exc:
        if exc.retry_after is None:  # Redis itself is down: a 503 like any other read of the gate
            raise
    return len(coupons_repo.holders(session, coupon_id))
