"""Using an issued coupon (exactly once) and listing a user's coupons."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from coupon.adapters import issued_repo
from coupon.errors import CouponAlreadyUsed, CouponExpired, IssuedCouponNotOwned
from coupon.models import IssuedCoupon
from coupon.services.coupons import get_coupon


def use_coupon(session: Session, coupon_id: str, user_id: str, now: datetime) -> IssuedCoupon:
    """The conditional UPDATE decides; the reads afterwards only explain a refusal."""
    if issued_repo.mark_used(session, coupon_id, user_id, now):
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


def owned_coupons(session: Session, user_id: str) -> list[dict[str, Any]]:
    return issued_repo.owned_by(session, user_id)
