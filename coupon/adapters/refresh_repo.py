"""Refresh tokens in the DB: rows by the SHA-256 of their secret, locked while a rotation decides."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update

from coupon.adapters.db_session import DbSession
from coupon.domain.models import RefreshToken


def add(
    session: DbSession,
    token_id: str,
    user_id: str,
    family_id: str,
    token_hash: str,
    expires_at: datetime,
    now: datetime,
) -> RefreshToken:
    """Stage a new row; the caller commits (a rotation commits it together with marking the old one used)."""
    row = RefreshToken(
        id=token_id, user_id=user_id, family_id=family_id, token_hash=token_hash, expires_at=expires_at, created_at=now
    )
    session.add(row)
    return row


def by_hash_for_update(session: DbSession, token_hash: str) -> RefreshToken | None:
    """The row, locked until commit: two concurrent rotations of one token are decided one after the other."""
    return session.execute(
        select(RefreshToken).where(RefreshToken.token_hash == token_hash).with_for_update()
    ).scalar_one_or_none()


def revoke_family(session: DbSession, family_id: str, now: datetime) -> None:
    """Revoke every not yet revoked row of a family (the caller commits)."""
    session.execute(
        update(RefreshToken)
        .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=now)
    )
