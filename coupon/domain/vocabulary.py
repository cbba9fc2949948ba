"""Domain vocabulary shared by every layer: roles, coupon kinds and the life cycle states."""

from __future__ import annotations

import enum
from datetime import UTC, datetime


class Role(str, enum.Enum):
    USER = "USER"
    ADMIN = "ADMIN"


class CouponType(str, enum.Enum):
    CHICKEN = "CHICKEN"
    HAMBURGER = "HAMBURGER"
    PIZZA = "PIZZA"
    COFFEE = "COFFEE"
    DESSERT = "DESSERT"
    GENERAL = "GENERAL"


class DiscountType(str, enum.Enum):
    FIXED = "FIXED"
    PERCENTAGE = "PERCENTAGE"


class CouponStatus(str, enum.Enum):
    ACTIVE = "ACTIVE"
    DISABLED = "DISABLED"


class CouponPhase(str, enum.Enum):
    """Where a coupon's issue window stands at a moment: the listing's `phase` filter."""

    LIVE = "live"  # issueStartsAt <= now < expiresAt
    UPCOMING = "upcoming"  # now < issueStartsAt
    ENDED = "ended"  # expiresAt <= now


def phase_of(issue_starts_at: datetime, expires_at: datetime, now: datetime) -> CouponPhase:
    if expires_at <= now:
        return CouponPhase.ENDED
    if now < issue_starts_at:
        return CouponPhase.UPCOMING
    return CouponPhase.LIVE


class CouponAction(str, enum.Enum):
    """What an admin change did to a coupon, as its coupon_events row names it."""

    CREATED = "created"
    UPDATED = "updated"
    DISABLED = "disabled"
    ENABLED = "enabled"
    CLOSED = "closed"


class IssueStatus(str, enum.Enum):
    """What a user sees of their request for one coupon."""

    NONE = "NONE"
    PENDING = "PENDING"
    ISSUED = "ISSUED"
    REJECTED = "REJECTED"


class FailureStatus(str, enum.Enum):
    PENDING = "PENDING"
    RESOLVED = "RESOLVED"
    DEAD = "DEAD"


# A failure record that is not RESOLVED still holds its stock unit: a DEAD one (out of automatic retries) keeps
# its reservation until an operator retries it (`flask failures retry ID`), so the gate rebuild, reconcile and
# the user's status (PENDING) all count it as a holder. These are exactly the rows with is_resolved = 0.
HOLDING_FAILURE_STATUSES = (FailureStatus.PENDING, FailureStatus.DEAD)


def utcnow() -> datetime:
    """Naive UTC: what the DB's DATETIME columns hold."""
    return datetime.now(UTC).replace(tzinfo=None)


def to_epoch_ms(value: datetime) -> int:
    return int(value.replace(tzinfo=UTC).timestamp() * 1000)


def iso(value: datetime | None) -> str | None:
    """Render a naive-UTC datetime as ISO-8601 with a Z."""
    if value is None:
        return None
    return value.replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"
