"""Initial schema: users, coupons, issued_coupons, failed_issued_coupons, issue_rejections.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TABLE = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4", "mariadb_engine": "InnoDB", "mariadb_charset": "utf8mb4"}


def _dt():
    return sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


def _enum(name, *values):
    return sa.Enum(*values, name=name, native_enum=False, length=16)


def _uuid():
    return sa.String(length=36)


def upgrade():
    op.create_table(
        "users",
        sa.Column("id", _uuid(), primary_key=True),
        sa.Column("username", sa.String(length=50), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("role", _enum("role", "USER", "ADMIN"), nullable=False),
        sa.Column("created_at", _dt(), nullable=False),
        sa.UniqueConstraint("username", name="uq_users_username"),
        **TABLE,
    )
    op.create_table(
        "coupons",
        sa.Column("id", _uuid(), primary_key=True),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column(
            "type",
            _enum("coupontype", "CHICKEN", "HAMBURGER", "PIZZA", "COFFEE", "DESSERT", "GENERAL"),
            nullable=False,
        ),
        sa.Column("discount_type", _enum("discounttype", "FIXED", "PERCENTAGE"), nullable=False),
        sa.Column("discount_value", sa.Numeric(precision=12, scale=2), nullable=False),
        sa.Column("total_quantity", sa.Integer(), nullable=False),
        sa.Column("issued_count", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("issue_starts_at", _dt(), nullable=False),
        sa.Column("expires_at", _dt(), nullable=False),
        sa.Column("status", _enum("couponstatus", "ACTIVE", "DISABLED"), nullable=False),
        sa.Column("created_at", _dt(), nullable=False),
        sa.CheckConstraint("issued_count <= total_quantity", name="ck_coupons_stock"),
        **TABLE,
    )
    op.create_table(
        "issued_coupons",
        sa.Column("id", sa.BigInteger(), primary_key=True, autoincrement=True),
        sa.Column("coupon_id", _uuid(), nullable=False),
        sa.Column("user_id", _uuid(), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("issued_at", _dt(), nullable=False),
        sa.Column("used", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("used_at", _dt(), nullable=True),
        sa.UniqueConstraint("coupon_id", "user_id", name="uq_issued_coupon_user"),
        sa.Index("ix_issued_user", "user_id"),
        **TABLE,
    )
    op.create_table(
        "failed_issued_coupons",
        sa.Column("id", sa.BigInteger(), primary_key=True, autoincrement=True),
        sa.Column("coupon_id", _uuid(), nullable=False),
        sa.Column("user_id", _uuid(), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("retry_count", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("is_resolved", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("status", _enum("failurestatus", "PENDING", "RESOLVED", "DEAD"), nullable=False),
        sa.Column("created_at", _dt(), nullable=False),
        sa.Column("last_retried_at", _dt(), nullable=True),
        sa.Column("resolved_at", _dt(), nullable=True),
        sa.Index("ix_failed_status", "is_resolved", "status", "id"),
        sa.Index("ix_failed_coupon_user", "coupon_id", "user_id"),
        **TABLE,
    )
    op.create_table(
        "issue_rejections",
        sa.Column("id", sa.BigInteger(), primary_key=True, autoincrement=True),
        sa.Column("coupon_id", _uuid(), nullable=False),
        sa.Column("user_id", _uuid(), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("created_at", _dt(), nullable=False),
        sa.UniqueConstraint("coupon_id", "user_id", name="uq_rejection_coupon_user"),
        **TABLE,
    )


def downgrade():
    for table in ("issue_rejections", "failed_issued_coupons", "issued_coupons", "coupons", "users"):
        op.drop_table(table)
