"""The typed commands services take: what a caller asks for, already validated (coupon.http.parsing builds them)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from coupon.domain.vocabulary import CouponType, DiscountType


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str


@dataclass(frozen=True)
class CouponDraft:
    name: str
    type: CouponType
    discount_type: DiscountType
    discount_value: Decimal
    total_quantity: int
    issue_starts_at: datetime
    expires_at: datetime
