"""Issued coupons in the DB: ownership, status look-ups and the one-shot usage update."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, NamedTuple, cast

from sqlalchemy import and_, or_, select, text, update

from coupon.adapters.db_session import DbSession
from coupon.domain.commands import RankPosition
from coupon.domain.models import Coupon, FailedIssuedCoupon, IssuedCoupon, IssueRejection, User
from coupon.domain.vocabulary import HOLDING_FAILURE_STATUSES

if TYPE_CHECKING:
    from sqlalchemy import CursorResult


def find(session: DbSession, coupon_id: str, user_id: str) -> IssuedCoupon | None:
    return session.execute(
        select(IssuedCoupon).where(IssuedCoupon.coupon_id == coupon_id, IssuedCoupon.user_id == user_id)
    ).scalar_one_or_none()


def is_rejected(session: DbSession, coupon_id: str, user_id: str) -> bool:
    """Only the DB stock guard rejects (issue_rejections); a DEAD failure record is held, not rejected."""
    hit = session.execute(
        select(IssueRejection.id).where(IssueRejection.coupon_id == coupon_id, IssueRejection.user_id == user_id)
    ).first()
    return hit is not None


def holds_failure(session: DbSession, coupon_id: str, user_id: str) -> bool:
    """An unresolved (PENDING or DEAD) failure record of this pair: its request still holds its unit."""
    hit = session.execute(
        select(FailedIssuedCoupon.id)
        .where(
            FailedIssuedCoupon.coupon_id == coupon_id,
            FailedIssuedCoupon.user_id == user_id,
            FailedIssuedCoupon.status.in_(HOLDING_FAILURE_STATUSES),
        )
        .limit(1)
    ).first()
    return hit is not None


def mark_used(session: DbSession, coupon_id: str, user_id: str, now: datetime) -> bool:
    """One conditional UPDATE: only an unused, unexpired coupon of this user flips; True if it did."""
    expiry = select(Coupon.expires_at).where(Coupon.id == coupon_id).scalar_subquery()
    result = session.execute(
        update(IssuedCoupon)
        .where(
            IssuedCoupon.coupon_id == coupon_id,
            IssuedCoupon.user_id == user_id,
            IssuedCoupon.used.is_(False),
            expiry > now,
        )
        .values(used=True, used_at=now)
        .execution_options(synchronize_session=False)
    )
    # DML runs into a CursorResult, which has rowcount; Session.execute is typed as returning a plain Result.
    return cast("CursorResult[Any]", result).rowcount == 1


def owned_by(session: DbSession, user_id: str) -> list[dict[str, Any]]:
    rows = session.execute(
        text(
            "SELECT c.id, c.name, c.type, c.discount_type, c.discount_value, c.expires_at,"
            " i.issued_at, i.used, i.used_at, i.`rank`"
            " FROM issued_coupons i JOIN coupons c ON c.id = i.coupon_id"
            " WHERE i.user_id = :user_id ORDER BY i.issued_at DESC, i.id DESC"
        ),
        {"user_id": user_id},
    )
    return [dict(r._mapping) for r in rows]


class LedgerRow(NamedTuple):
    """One winner of a coupon: the issued row and its user's name (None once the account was deleted)."""

    row_id: int
    user_id: str
    username: str | None
    rank: int
    issued_at: datetime
    used: bool
    used_at: datetime | None


def ledger_page(session: DbSession, coupon_id: str, limit: int, after: RankPosition | None = None) -> list[LedgerRow]:
    """The coupon's issued rows by rank (row id breaking ties), after `after`, along ix_issued_coupon_rank."""
    query = (
        select(
            IssuedCoupon.id,
            IssuedCoupon.user_id,
            User.username,
            IssuedCoupon.rank,
            IssuedCoupon.issued_at,
            IssuedCoupon.used,
            IssuedCoupon.used_at,
        )
        .outerjoin(User, User.id == IssuedCoupon.user_id)
        .where(IssuedCoupon.coupon_id == coupon_id)
    )
    if after is not None:
        query = query.where(
            or_(
                IssuedCoupon.rank > after.rank,
                and_(IssuedCoupon.rank == after.rank, IssuedCoupon.id > after.row_id),
            )
        )
    rows = session.execute(query.order_by(IssuedCoupon.rank, IssuedCoupon.id).limit(limit))
    return [LedgerRow(*row) for row in rows]
