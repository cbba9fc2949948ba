"""Coupons in the DB, and what the gate needs to be rebuilt from them."""

from __future__ import annotations

from datetime import datetime

import orjson
from sqlalchemy import and_, or_, select

from coupon.adapters.db_session import DbSession
from coupon.domain.commands import CouponPosition
from coupon.domain.models import Coupon, FailedIssuedCoupon, IssueCancellation, IssuedCoupon
from coupon.domain.vocabulary import HOLDING_FAILURE_STATUSES, CouponPhase, CouponStatus


def add(session: DbSession, coupon: Coupon) -> Coupon:
    session.add(coupon)
    session.flush()
    return coupon


def get(session: DbSession, coupon_id: str) -> Coupon | None:
    return session.get(Coupon, coupon_id)


def lock(session: DbSession, coupon_id: str) -> Coupon | None:
    """SELECT ... FOR UPDATE: the row lock every writer of the coupon's gate meta holds (PATCH, gate rebuild), and
    the consumer's stock guard too. The object is refreshed from the locked row, whatever the session held."""
    return session.execute(
        select(Coupon).where(Coupon.id == coupon_id).with_for_update().execution_options(populate_existing=True)
    ).scalar_one_or_none()


def page(
    session: DbSession,
    now: datetime,
    limit: int,
    *,
    status: CouponStatus | None = None,
    phase: CouponPhase | None = None,
    not_ended: bool = False,
    after: CouponPosition | None = None,
) -> list[Coupon]:
    """Newest first (created_at DESC, id DESC: ix_coupons_created read backwards), only the rows after `after`.

    Keyset pagination: a page starts strictly after the previous page's last (created_at, id), so rows inserted
    meanwhile (newer ones) never shift a later page, and none is skipped or repeated.
    """
    query = select(Coupon)
    if status is not None:
        query = query.where(Coupon.status == status)
    if phase is CouponPhase.LIVE:
        query = query.where(Coupon.issue_starts_at <= now, Coupon.expires_at > now)
    elif phase is CouponPhase.UPCOMING:
        query = query.where(Coupon.issue_starts_at > now)
    elif phase is CouponPhase.ENDED:
        query = query.where(Coupon.expires_at <= now)
    if not_ended:
        query = query.where(Coupon.expires_at > now)
    if after is not None:
        query = query.where(
            or_(
                Coupon.created_at < after.created_at,
                and_(Coupon.created_at == after.created_at, Coupon.id < after.id),
            )
        )
    return list(session.execute(query.order_by(Coupon.created_at.desc(), Coupon.id.desc()).limit(limit)).scalars())


def find_by_name(session: DbSession, name: str) -> Coupon | None:
    return session.execute(select(Coupon).where(Coupon.name == name).limit(1)).scalar_one_or_none()


def ids_expiring_after(session: DbSession, since: datetime) -> list[str]:
    """Coupons whose issue window ended after `since` (or has not ended): the ones that can hold reservations."""
    return list(session.execute(select(Coupon.id).where(Coupon.expires_at > since)).scalars())


def holders(session: DbSession, coupon_id: str) -> dict[str, int]:
    """Every user who holds a claim on the coupon's stock: issued rows and unresolved (PENDING or DEAD)
    failures, with ranks."""
    result: dict[str, int] = {}
    unresolved = session.execute(
        select(FailedIssuedCoupon.user_id, FailedIssuedCoupon.payload).where(
            FailedIssuedCoupon.coupon_id == coupon_id,
            FailedIssuedCoupon.status.in_(HOLDING_FAILURE_STATUSES),
        )
    )
    for user_id, payload in unresolved:
        try:
            rank = int(orjson.loads(payload).get("rank", 0))
        except (orjson.JSONDecodeError, AttributeError, TypeError, ValueError):
            rank = 0
        result[user_id] = rank
    issued = session.execute(select(IssuedCoupon.user_id, IssuedCoupon.rank).where(IssuedCoupon.coupon_id == coupon_id))
    for user_id, rank in issued:
        result[user_id] = rank
    return result


def fenced_events(session: DbSession, coupon_id: str, event_ids: list[str]) -> set[str]:
    """The events among `event_ids` whose reservation the sweeper cancelled: the consumer skips their records."""
    if not event_ids:
        return set()
    rows = session.execute(
        select(IssueCancellation.event_id).where(
            IssueCancellation.coupon_id == coupon_id, IssueCancellation.event_id.in_(event_ids)
        )
    )
    return {event_id for (event_id,) in rows}


def ended_between(session: DbSession, since: datetime, until: datetime) -> list[str]:
    """Coupons whose issue window ended in [since, until): the sweeper retires their gates."""
    return list(
        session.execute(select(Coupon.id).where(Coupon.expires_at >= since, Coupon.expires_at < until)).scalars()
    )
