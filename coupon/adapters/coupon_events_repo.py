"""coupon_events: the admin changes of coupons, each added in the transaction of its change."""

from __future__ import annotations

from sqlalchemy import select

from coupon.adapters.db_session import DbSession
from coupon.domain.models import CouponEvent, User


def add(session: DbSession, event: CouponEvent) -> CouponEvent:
    """Insert and flush (the event gets its id)."""
    session.add(event)
    session.flush()
    return event


def exists(session: DbSession, event_id: int) -> bool:
    return session.execute(select(CouponEvent.id).where(CouponEvent.id == event_id)).first() is not None


def page(
    session: DbSession, coupon_id: str, limit: int, before_id: int | None = None
) -> list[tuple[CouponEvent, str | None]]:
    """Newest first (id DESC, along ix_coupon_events_coupon), with the actor's username when it is a user that
    still exists (None for the CLI and for deleted accounts)."""
    query = (
        select(CouponEvent, User.username)
        .outerjoin(User, User.id == CouponEvent.actor)
        .where(CouponEvent.coupon_id == coupon_id)
    )
    if before_id is not None:
        query = query.where(CouponEvent.id < before_id)
    rows = session.execute(query.order_by(CouponEvent.id.desc()).limit(limit))
    return [(event, username) for event, username in rows]
