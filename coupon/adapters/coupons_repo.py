"""Coupons in the DB, and what the gate needs to be rebuilt from them."""

from __future__ import annotations

from datetime import datetime

import orjson
from sqlalchemy import delete, select

from coupon.adapters.db_session import DbSession
from coupon.domain.models import Coupon, FailedIssuedCoupon, IssuedCoupon
from coupon.domain.vocabulary import HOLDING_FAILURE_STATUSES


def add(session: DbSession, coupon: Coupon) -> Coupon:
    session.add(coupon)
    session.flush()
    return coupon


def get(session: DbSession, coupon_id: str) -> Coupon | None:
    return session.get(Coupon, coupon_id)


def find_by_name(session: DbSession, name: str) -> Coupon | None:
    return session.execute(select(Coupon).where(Coupon.name == name).limit(1)).scalar_one_or_none()


def ids_expiring_after(session: DbSession, since: datetime) -> list[str]:
    """Coupons whose issue window ended after `since` (or has not ended): the ones that can hold reservations."""
    return list(session.execute(select(Coupon.id).where(Coupon.expires_at > since)).scalars())


def remove(session: DbSession, coupon_id: str) -> None:
    session.execute(delete(Coupon).where(Coupon.id == coupon_id))


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
