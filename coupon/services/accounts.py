"""Sign-up, login and admin accounts."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from functools import cache
from typing import Protocol

from coupon.adapters import users_repo
from coupon.adapters.db_session import DbSession
from coupon.adapters.hasher import hash_inline, verify_inline
from coupon.adapters.rate_limit import LimitDecision, LimitOutcome
from coupon.domain.commands import Credentials
from coupon.domain.errors import BadCredentials, CannotDeleteSelf, RateLimited, UserNotFound
from coupon.domain.models import User
from coupon.domain.vocabulary import Role
from coupon.services.unit_of_work import unit_of_work


@cache
def _dummy_hash() -> str:
    """Checked when the username is unknown, so a miss costs as much time as a wrong password. Made on first use:
    at import it cost every process (API workers, consumers, each CLI run) a hash's CPU at start."""
    return hash_inline("not-a-real-password")


TokenMinter = Callable[[User], tuple[str, int]]


class HashSlot(Protocol):
    def hash(self, password: str) -> str: ...

    def verify(self, stored: str, password: str) -> bool: ...


class Hasher(HashSlot, Protocol):
    """Runs the slow hashes off the request loop (coupon.adapters.hasher.PasswordHasher); full → HashingBusy."""

    def slot(self) -> AbstractContextManager[HashSlot]: ...


class LoginAttempts(Protocol):
    """Per-username attempt counter (coupon.adapters.rate_limit.RateLimiter)."""

    def take_login_attempt(self, username: str) -> LimitDecision: ...

    def clear_login_attempts(self, username: str) -> None: ...


class DeletionMarker(Protocol):
    def mark_deleted(self, user_id: str) -> None: ...


@dataclass(frozen=True)
class LoginResult:
    user: User
    access_token: str
    expires_in: int


def hash_password(password: str) -> str:
    """Inline, on the calling thread: for the CLI and bulk minting; requests go through a Hasher."""
    return hash_inline(password)


def user_view(user: User) -> dict[str, str]:
    return {"id": user.id, "username": user.username, "role": user.role.value}


def signup(session: DbSession, hasher: Hasher, creds: Credentials, role: Role = Role.USER) -> User:
    """Hash (off the request loop; all slots taken → HashingBusy, nothing written), then insert."""
    password_hash = hasher.hash(creds.password)
    with unit_of_work(session):
        return users_repo.add(session, str(uuid.uuid4()), creds.username, password_hash, role)


def login(
    session: DbSession, hasher: Hasher, creds: Credentials, mint: TokenMinter, attempts: LoginAttempts | None = None
) -> LoginResult:
    """Check the password (scrypt, also for unknown names); over the attempt limit → RateLimited, unchecked.

    The hashing slot is taken first: a login refused as busy (HashingBusy) has not used up an attempt."""
    with hasher.slot() as slot:
        if attempts is not None:
            decision = attempts.take_login_attempt(creds.username)
            if decision.outcome is LimitOutcome.LIMITED:
                raise RateLimited(
                    "Too many login attempts for this username; try again later", retry_after=decision.retry_after_s
                )
        user = users_repo.by_username(session, creds.username)
        if user is None:
            slot.verify(_dummy_hash(), creds.password)
            raise BadCredentials()
        if not slot.verify(user.password_hash, creds.password):
            raise BadCredentials()
    if attempts is not None:
        attempts.clear_login_attempts(creds.username)
    token, expires_in = mint(user)
    return LoginResult(user=user, access_token=token, expires_in=expires_in)


def ensure_admin(session: DbSession, username: str, password: str) -> tuple[User, bool]:
    """Create the admin, or promote and re-password an existing user of that name. Returns (user, created).

    CLI only (create-admin), so it hashes inline."""
    with unit_of_work(session):
        user = users_repo.by_username(session, username)
        if user is None:
            return users_repo.add(session, str(uuid.uuid4()), username, hash_password(password), Role.ADMIN), True
        user.role = Role.ADMIN
        if not verify_inline(user.password_hash, password):
            user.password_hash = hash_password(password)
    return user, False


def resolve_user_id(session: DbSession, name_or_id: str) -> str:
    """The id of the account named (by username or id); the value itself when no account matches."""
    found = users_repo.by_username(session, name_or_id) or users_repo.get(session, name_or_id)
    return found.id if found else name_or_id


def delete_user(session: DbSession, marker: DeletionMarker, user_id: str, acting_user_id: str | None = None) -> None:
    """Delete the account; its still-valid tokens are refused from the moment the marker is written.

    Marker first: if the DB delete then fails, the account is merely locked, and deleting again finishes.
    An admin can't delete themselves over the API (the last admin would lock everyone out)."""
    if user_id == acting_user_id:
        raise CannotDeleteSelf(data={"userId": user_id})
    if users_repo.get(session, user_id) is None:
        raise UserNotFound(data={"userId": user_id})
    marker.mark_deleted(user_id)
    with unit_of_work(session):
        users_repo.delete(session, user_id)
