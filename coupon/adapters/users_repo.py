"""Users in the DB."""

from __future__ import annotations

from sqlalchemy import delete as sql_delete
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from coupon.adapters.db_session import DbSession
from coupon.domain.errors import UsernameTaken
from coupon.domain.models import User
from coupon.domain.vocabulary import Role


def add(session: DbSession, user_id: str, username: str, password_hash: str, role: Role) -> User:
    """Insert and flush; the UNIQUE(username) index decides races between concurrent signups."""
    user = User(id=user_id, username=username, password_hash=password_hash, role=role)
    session.add(user)
    try:
        session.flush()
    except IntegrityError as exc:
        raise UsernameTaken(data={"username": username}) from exc
    return user


def by_username(session: DbSession, username: str) -> User | None:
    return session.execute(select(User).where(User.username == username)).scalar_one_or_none()


def get(session: DbSession, user_id: str) -> User | None:
    return session.get(User, user_id)


def delete(session: DbSession, user_id: str) -> None:
    session.execute(sql_delete(User).where(User.id == user_id))


def add_many(session: DbSession, rows: list[dict[str, object]]) -> None:
    """Bulk insert for load-test users (no ORM objects: thousands at once)."""
    if rows:
        session.execute(User.__table__.insert(), rows)
