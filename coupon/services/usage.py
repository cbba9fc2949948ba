"""Using an issued coupon (exactly once) and listing a user's coupons."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from coupon.adapters import issued_repo
from coupon.adapters.db_session import DbSession
from coupon.domain.errors import CouponAlreadyUsed, CouponExpired, IssuedCouponNotOwned
from coupon.domain.models import IssuedCoupon
from coupon.services.catalog import get_coupon
from coupon.services.unit_of_work import unit_of_work


def use_coupon(session: DbSession, coupon_id: str, user_id: str, now: datetime) -> IssuedCoupon:
    """The conditional UPDATE decides; the reads afterwards only explain a refusal."""
    with unit_of_work(session):
        used = issued_repo.mark_used(session, coupon_id, user_id, now)
    if used:
        record = issued_repo.find(session, coupon_id, user_id)
        assert record is not None
        return record
    get_coupon(session, coupon_id)
    record = issued_repo.find(session, coupon_id, user_id)
    if record is None:
        raise IssuedCouponNotOwned(data={"couponId": coupon_id})
    if record.used:
        raise CouponAlreadyUsed(data={"couponId": coupon_id})
    raise CouponExpired(data={"couponId": coupon_id})


def owned_coupons(session: DbSession, user_id: str) -> list[dict[str, Any]]:
    return issued_repo.owned_by(session, user_id)
