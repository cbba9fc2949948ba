"""The all-or-nothing boundary: repositories add and flush; the service that owns a rule commits or rolls back."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.orm import Session


@contextmanager
def unit_of_work(session: Session) -> Iterator[Session]:
    """Commit what the block wrote when it ends; roll all of it back when the block or the commit raises."""
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
