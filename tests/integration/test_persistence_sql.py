"""The consumer's hand-built multi-row INSERT against the real MariaDB: driver escaping holds for hostile values."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from coupon.services.persistence import _insert_many


def test_insert_many_escapes_quotes_backslashes_and_percent_signs(engine: sa.Engine) -> None:
    now = datetime(2026, 11, 27, 9, 0, 0, 250000)
    rows = [("x%s'y", 1, now), ("100%", 2, now), ("q\\", 3, now), ("x%s'y", 4, now), ("é'; DROP TABLE t; --", 5, now)]
    with Session(engine) as session:
        session.execute(sa.text("CREATE TEMPORARY TABLE t (a VARCHAR(50), b INT, c DATETIME(3))"))
        assert _insert_many(session, "INSERT IGNORE INTO t (a, b, c)", rows) == 5
        got = session.execute(sa.text("SELECT a, b, c FROM t ORDER BY b")).all()
    assert [tuple(r) for r in got] == rows


def test_insert_many_of_nothing_inserts_nothing(engine: sa.Engine) -> None:
    with Session(engine) as session:
        assert _insert_many(session, "INSERT IGNORE INTO t (a, b, c)", []) == 0
