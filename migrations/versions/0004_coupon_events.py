"""coupon_events (every admin change of a coupon), and the indexes of the admin listings.

- coupon_events: one row per change, written in the change's own transaction; shown newest first per coupon.
- ix_coupons_created (created_at, id): GET /api/coupon, newest first, read backwards along the index.
- ix_issued_coupon_rank (coupon_id, rank): the winners ledger of a coupon by rank.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-15
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

TABLE = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4", "mariadb_engine": "InnoDB", "mariadb_charset": "utf8mb4"}


def _dt() -> sa.types.TypeEngine:
    return sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


def upgrade() -> None:
    op.create_table(
        "coupon_events",
        sa.Column("id", sa.BigInteger(), primary_key=True, autoincrement=True),
        sa.Column("coupon_id", sa.String(length=36), nullable=False),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("at", _dt(), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("changes", sa.JSON(), nullable=False),
        sa.Index("ix_coupon_events_coupon", "coupon_id", "id"),
        **TABLE,
    )
    op.create_index("ix_coupons_created", "coupons", ["created_at", "id"])
    op.create_index("ix_issued_coupon_rank", "issued_coupons", ["coupon_id", "rank"])


def downgrade() -> None:
    op.drop_index("ix_issued_coupon_rank", table_name="issued_coupons")
    op.drop_index("ix_coupons_created", table_name="coupons")
    op.drop_table("coupon_events")
