"""The typed commands services take: what a caller asks for, already validated (coupon.http.parsing builds them)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from coupon.domain.vocabulary import CouponPhase, CouponStatus, CouponType, DiscountType


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


@dataclass(frozen=True)
class CouponPatch:
    """An admin's change to a coupon: None leaves a field as it is; at least one field is set."""

    status: CouponStatus | None = None
    issue_starts_at: datetime | None = None
    expires_at: datetime | None = None
    total_quantity: int | None = None
    name: str | None = None


@dataclass(frozen=True)
class CouponPosition:
    """Where a page of the coupon listing ended: the last item's (created_at, id), the listing's sort key."""

    created_at: datetime
    id: str


@dataclass(frozen=True)
class ListingQuery:
    """GET /api/coupon: newest first, optionally one status and one phase, `limit` items after `after`."""

    status: CouponStatus | None = None
    phase: CouponPhase | None = None
    limit: int = 20
    after: CouponPosition | None = None


@dataclass(frozen=True)
class RankPosition:
    """Where a page of the winners ledger ended: the last row's rank, and its row id for equal ranks."""

    rank: int
    row_id: int


@dataclass(frozen=True)
class LedgerQuery:
    """GET /api/coupon/{id}/issued: by rank, `limit` rows after `after`."""

    limit: int = 100
    after: RankPosition | None = None


@dataclass(frozen=True)
class EventsQuery:
    """GET /api/coupon/{id}/events: newest first, `limit` events older than the event `before_id`."""

    limit: int = 20
    before_id: int | None = None
