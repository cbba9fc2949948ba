"""The all-or-nothing boundary: repositories add and flush; the service that owns a rule commits or rolls back."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from coupon.adapters.db_session import DbSession


@contextmanager
def unit_of_work(session: DbSession) -> Iterator[DbSession]:
    """Commit what the block wrote when it ends; roll all of it back when the block or the commit raises."""
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
