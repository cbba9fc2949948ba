"""Refresh tokens: issued at login, rotated (single use) by refresh, revoked by logout or by the reuse of one."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol, TypeVar

from sqlalchemy.exc import DBAPIError

from coupon.adapters import mysql_errors, refresh_repo, users_repo
from coupon.adapters.db_session import DbSession
from coupon.adapters.mysql_errors import error_number
from coupon.domain.errors import RefreshTokenInvalid, RefreshTokenReused
from coupon.domain.models import User

# 32 random bytes: guessing one is hopeless, so refresh needs no attempt limit of its own.
SECRET_BYTES = 32
MAX_TOKEN_LEN = 128

TokenMinter = Callable[[User], tuple[str, int]]
T = TypeVar("T")
ATTEMPTS = 3


def _retrying(session: DbSession, work: Callable[[], T]) -> T:
    for attempt in range(1, ATTEMPTS + 1):
        try:
            return work()
        except DBAPIError as exc:
            session.rollback()
            # InnoDB picks a victim when concurrent rotations of one family cross (a new row's insert against a
            # family revocation's gap locks): the victim's transaction is rolled back whole, so run it again.
            code = error_number(exc.orig) if exc.orig is not None else None
            if code not in mysql_errors.ROLLED_BACK or attempt == ATTEMPTS:
                raise
    raise AssertionError("unreachable")


class AccessTokenRevoker(Protocol):
    """Writes an access token's revocation marker (coupon.adapters.rate_limit.RateLimiter)."""

    def revoke_token(self, user_id: str, jti: str, ttl_s: int) -> None: ...


@dataclass(frozen=True)
class RefreshIssued:
    token: str
    expires_in: int


@dataclass(frozen=True)
class Rotated:
    user: User
    access_token: str
    expires_in: int
    refresh: RefreshIssued


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _issue(
    session: DbSession, user_id: str, family_id: str, now: datetime, lifetime_s: int
) -> tuple[str, RefreshIssued]:
    """Stage a new token of the family: (its row id, the token the client gets). Only its digest is stored."""
    token = secrets.token_urlsafe(SECRET_BYTES)
    token_id = str(uuid.uuid4())
    refresh_repo.add(session, token_id, user_id, family_id, digest(token), now + timedelta(seconds=lifetime_s), now)
    return token_id, RefreshIssued(token, lifetime_s)


def start(session: DbSession, user_id: str, now: datetime, lifetime_s: int) -> RefreshIssued:
    """A login: the first refresh token of a new family."""
    _, issued = _issue(session, user_id, str(uuid.uuid4()), now, lifetime_s)
    session.commit()
    return issued


def rotate(session: DbSession, token: str, mint: TokenMinter, now: datetime, lifetime_s: int) -> Rotated:
    """Trade a refresh token for a new access token and a new refresh token; the old one is used up.

    A token that was already used is a replay (a thief's or the owner's, we can't tell which): the whole family is
    revoked, so the newest token of it stops working too, and the owner logs in again."""
    return _retrying(session, lambda: _rotate(session, token, mint, now, lifetime_s))


def _rotate(session: DbSession, token: str, mint: TokenMinter, now: datetime, lifetime_s: int) -> Rotated:
    row = refresh_repo.by_hash_for_update(session, digest(token)) if len(token) <= MAX_TOKEN_LEN else None
    if row is None:
        session.rollback()
        raise RefreshTokenInvalid()
    if row.used_at is not None:
        refresh_repo.revoke_family(session, row.family_id, now)
        session.commit()
        raise RefreshTokenReused()
    if row.revoked_at is not None or row.expires_at <= now:
        session.rollback()
        raise RefreshTokenInvalid()
    user = users_repo.get(session, row.user_id)
    if user is None:  # the account was deleted: nothing of it may live on
        refresh_repo.revoke_family(session, row.family_id, now)
        session.commit()
        raise RefreshTokenInvalid()
    new_id, issued = _issue(session, row.user_id, row.family_id, now, lifetime_s)
    row.used_at, row.replaced_by = now, new_id
    session.commit()
    access_token, expires_in = mint(user)
    return Rotated(user, access_token, expires_in, issued)


def end(
    session: DbSession,
    revoker: AccessTokenRevoker,
    token: str,
    user_id: str,
    jti: str,
    access_ttl_s: int,
    now: datetime,
) -> None:
    """Logout: revoke the refresh token's whole family and the access token that asks.

    The refresh token must be the caller's; in any state (used, revoked, expired) its family is revoked again.
    DB first: should Redis then fail (503), the session can no longer be refreshed and the access token expires."""
    _retrying(session, lambda: _revoke_own_family(session, token, user_id, now))
    revoker.revoke_token(user_id, jti, access_ttl_s)


def _revoke_own_family(session: DbSession, token: str, user_id: str, now: datetime) -> None:
    row = refresh_repo.by_hash_for_update(session, digest(token)) if len(token) <= MAX_TOKEN_LEN else None
    if row is None or row.user_id != user_id:
        session.rollback()
        raise RefreshTokenInvalid()
    refresh_repo.revoke_family(session, row.family_id, now)
    session.commit()
