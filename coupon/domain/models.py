"""SQLAlchemy models: the four tables of the design, the records of rejected and cancelled requests, refresh tokens,
and the admin changes of coupons."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Enum,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects import mysql
from sqlalchemy.orm import Mapped, mapped_column

from coupon.domain.vocabulary import (
    CouponAction,
    CouponStatus,
    CouponType,
    DiscountType,
    FailureStatus,
    Role,
    utcnow,
)
from coupon.extensions import db

if TYPE_CHECKING:
    # mypy cannot subclass a class held by an instance attribute (db.Model: python/mypy#8603). It checks the models
    # against the same shape: a declarative base with flask-sqlalchemy's Model mixin. At run time it is db.Model.
    from typing import ClassVar

    from flask_sqlalchemy.model import Model as _FlaskModel
    from sqlalchemy import Table
    from sqlalchemy.orm import DeclarativeBase

    class Base(_FlaskModel, DeclarativeBase):
        __abstract__ = True
        __table__: ClassVar[Table]  # every model here is mapped to a Table (DeclarativeBase says FromClause)

else:
    Base = db.Model

UUID_LEN = 36


def _dt() -> DateTime:
    """Microsecond timestamps on MySQL/MariaDB (their default DATETIME drops fractions)."""
    return DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


def _enum(cls: type) -> Enum:
    return Enum(cls, native_enum=False, length=16, values_callable=lambda e: [m.value for m in e])


class User(Base):
    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(UUID_LEN), primary_key=True)
    username: Mapped[str] = mapped_column(String(50), nullable=False, unique=True)
    password_hash: Mapped[str] = mapped_column(String(255), nullable=False)
    role: Mapped[Role] = mapped_column(_enum(Role), nullable=False, default=Role.USER)
    created_at: Mapped[datetime] = mapped_column(_dt(), nullable=False, default=utcnow)


class Coupon(Base):
    __tablename__ = "coupons"
    # The listing's order (newest first, id breaking ties) read backwards along one index.
    __table_args__ = (Index("ix_coupons_created", "created_at", "id"),)

    id: Mapped[str] = mapped_column(String(UUID_LEN), primary_key=True)
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    type: Mapped[CouponType] = mapped_column(_enum(CouponType), nullable=False)
    discount_type: Mapped[DiscountType] = mapped_column(_enum(DiscountType), nullable=False)
    discount_value: Mapped[Decimal] = mapped_column(Numeric(12, 2), nullable=False)
    total_quantity: Mapped[int] = mapped_column(Integer, nullable=False)
    # The DB-side stock guard: raised only by rows really inserted, never past total_quantity.
    issued_count: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    issue_starts_at: Mapped[datetime] = mapped_column(_dt(), nullable=False)
    expires_at: Mapped[datetime] = mapped_column(_dt(), nullable=False)
    status: Mapped[CouponStatus] = mapped_column(_enum(CouponStatus), nullable=False, default=CouponStatus.ACTIVE)
    created_at: Mapped[datetime] = mapped_column(_dt(), nullable=False, default=utcnow)


class IssuedCoupon(Base):
    __tablename__ = "issued_coupons"
    __table_args__ = (
        UniqueConstraint("coupon_id", "user_id", name="uq_issued_coupon_user"),
        Index("ix_issued_user", "user_id"),
        # The winners ledger, by rank (InnoDB appends the primary key: rank ties are ordered by id).
        Index("ix_issued_coupon_rank", "coupon_id", "rank"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    coupon_id: Mapped[str] = mapped_column(String(UUID_LEN), nullable=False)
    user_id: Mapped[str] = mapped_column(String(UUID_LEN), nullable=False)
    rank: Mapped[int] = mapped_column(Integer, nullable=False)
    issued_at: Mapped[datetime] = mapped_column(_dt(), nullable=False, default=utcnow)
    used: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    used_at: Mapped[datetime | None] = mapped_column(_dt(), nullable=True)


class FailedIssuedCoupon(Base):
    __tablename__ = "failed_issued_coupons"
    __table_args__ = (
        Index("ix_failed_status", "is_resolved", "status", "id"),
        Index("ix_failed_coupon_user", "coupon_id", "user_id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    coupon_id: Mapped[str] = mapped_column(String(UUID_LEN), nullable=False)
    user_id: Mapped[str] = mapped_column(String(UUID_LEN), nullable=False)
    payload: Mapped[str] = mapped_column(Text, nullable=False)
    error: Mapped[str] = mapped_column(Text, nullable=False)
    retry_count: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    is_resolved: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    status: Mapped[FailureStatus] = mapped_column(_enum(FailureStatus), nullable=False, default=FailureStatus.PENDING)
    created_at: Mapped[datetime] = mapped_column(_dt(), nullable=False, default=utcnow)
    last_retried_at: Mapped[datetime | None] = mapped_column(_dt(), nullable=True)
    resolved_at: Mapped[datetime | None] = mapped_column(_dt(), nullable=True)


class IssueRejection(Base):
    """An accepted request the DB stock guard refused (only after Redis lost data): the visible REJECTED."""

    __tablename__ = "issue_rejections"
    __table_args__ = (UniqueConstraint("coupon_id", "user_id", name="uq_rejection_coupon_user"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    coupon_id: Mapped[str] = mapped_column(String(UUID_LEN), nullable=False)
    user_id: Mapped[str] = mapped_column(String(UUID_LEN), nullable=False)
    rank: Mapped[int] = mapped_column(Integer, nullable=False)
    reason: Mapped[str] = mapped_column(String(32), nullable=False)
    created_at: Mapped[datetime] = mapped_column(_dt(), nullable=False, default=utcnow)


class IssueCancellation(Base):
    """The fence: a reservation the sweeper released. Its Kafka record, should it still arrive, is skipped."""

    __tablename__ = "issue_cancellations"
    __table_args__ = (UniqueConstraint("coupon_id", "event_id", name="uq_cancellation_coupon_event"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    coupon_id: Mapped[str] = mapped_column(String(UUID_LEN), nullable=False)
    user_id: Mapped[str] = mapped_column(String(UUID_LEN), nullable=False)
    event_id: Mapped[str] = mapped_column(String(64), nullable=False)
    reason: Mapped[str] = mapped_column(String(32), nullable=False)
    created_at: Mapped[datetime] = mapped_column(_dt(), nullable=False, default=utcnow)


class RefreshToken(Base):
    """One single-use refresh token, by the SHA-256 of its secret (the token itself is never stored).

    A login starts a family; each rotation adds a row to it and marks the old one used. Presenting a used row again
    revokes every row of the family."""

    __tablename__ = "refresh_tokens"
    __table_args__ = (
        UniqueConstraint("token_hash", name="uq_refresh_token_hash"),
        Index("ix_refresh_family", "family_id"),
        Index("ix_refresh_user", "user_id"),
    )

    id: Mapped[str] = mapped_column(String(UUID_LEN), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(UUID_LEN), nullable=False)
    family_id: Mapped[str] = mapped_column(String(UUID_LEN), nullable=False)
    token_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    expires_at: Mapped[datetime] = mapped_column(_dt(), nullable=False)
    used_at: Mapped[datetime | None] = mapped_column(_dt(), nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(_dt(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(_dt(), nullable=False, default=utcnow)
    replaced_by: Mapped[str | None] = mapped_column(String(UUID_LEN), nullable=True)


class CouponEvent(Base):
    """One admin change of a coupon (creation too), written in the same transaction as the change.

    `actor` is the admin's user id, or "cli" / "cli:<os user>"; `changes` is {field: {"from": old, "to": new}}
    with the API's field names and values."""

    __tablename__ = "coupon_events"
    __table_args__ = (Index("ix_coupon_events_coupon", "coupon_id", "id"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    coupon_id: Mapped[str] = mapped_column(String(UUID_LEN), nullable=False)
    actor: Mapped[str] = mapped_column(String(100), nullable=False)
    at: Mapped[datetime] = mapped_column(_dt(), nullable=False, default=utcnow)
    action: Mapped[CouponAction] = mapped_column(_enum(CouponAction), nullable=False)
    changes: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
