"""Bulk users with tokens, for load runs and tests: thousands at once, sharing one password hash."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

from coupon.adapters import users_repo
from coupon.adapters.db_session import DbSession
from coupon.domain.vocabulary import Role, utcnow
from coupon.services.unit_of_work import unit_of_work

TokenForId = Callable[[str], str]
CHUNK = 1000


def mint_users(
    session: DbSession, count: int, prefix: str, password_hash: str, token_for: TokenForId
) -> Iterator[list[tuple[str, str]]]:
    """Create `count` users in chunks, all with `password_hash` (accounts.hash_password: one slow hash, however many
    users, and a caller minting again reuses it); yields each chunk's (user id, access token) pairs."""
    now = utcnow()
    for start in range(0, count, CHUNK):
        rows = [
            {
                "id": str(uuid.uuid4()),
                "username": f"{prefix}-{i}",
                "password_hash": password_hash,
                "role": Role.USER.value,
                "created_at": now,
            }
            for i in range(start, min(start + CHUNK, count))
        ]
        with unit_of_work(session):
            users_repo.add_many(session, rows)
        yield [(str(row["id"]), token_for(str(row["id"]))) for row in rows]
