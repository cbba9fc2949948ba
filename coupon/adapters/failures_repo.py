"""failed_issued_coupons in the DB: the retry machinery's queries."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol, cast

from sqlalchemy import bindparam, text

from coupon.adapters.db_session import DbSession

if TYPE_CHECKING:
    from sqlalchemy import CursorResult


class FailureRow(Protocol):
    """A failed_issued_coupons row as the raw SELECTs below return it: its columns by name, as the driver reads
    them (a raw SELECT leaves the Boolean column a 0/1 integer). SQLAlchemy types a text() row's columns as Any,
    hence the casts."""

    id: int
    coupon_id: str
    user_id: str
    payload: str
    error: str
    retry_count: int
    is_resolved: int
    status: str
    created_at: datetime
    last_retried_at: datetime | None
    resolved_at: datetime | None


_COLUMNS = (
    "id, coupon_id, user_id, payload, error, retry_count, is_resolved, status, created_at, last_retried_at, resolved_at"
)


def claim_pending(session: DbSession, max_retries: int, limit: int) -> list[FailureRow]:
    """Lock a batch of retryable records; SKIP LOCKED lets concurrent job runs take different rows."""
    rows = list(
        session.execute(
            text(
                f"SELECT {_COLUMNS} FROM failed_issued_coupons"
                " WHERE is_resolved = 0 AND status = 'PENDING' AND retry_count < :max"
                " ORDER BY id LIMIT :limit FOR UPDATE SKIP LOCKED"
            ),
            {"max": max_retries, "limit": limit},
        )
    )
    return cast("list[FailureRow]", rows)


def mark_retried(session: DbSession, ids: list[int], now: datetime) -> None:
    if ids:
        session.execute(
            text(
                "UPDATE failed_issued_coupons SET retry_count = retry_count + 1, last_retried_at = :now"
                " WHERE id IN :ids"
            ).bindparams(bindparam("ids", expanding=True)),
            {"now": now, "ids": ids},
        )


def mark_dead(session: DbSession, max_retries: int, settled_before: datetime) -> int:
    """Out of retries, and the last retry has had time to land: DEAD."""
    result = session.execute(
        text(
            "UPDATE failed_issued_coupons SET status = 'DEAD'"
            " WHERE is_resolved = 0 AND status = 'PENDING' AND retry_count >= :max"
            " AND (last_retried_at IS NULL OR last_retried_at < :before)"
        ),
        {"max": max_retries, "before": settled_before},
    )
    # DML runs into a CursorResult, which has rowcount; Session.execute is typed as returning a plain Result.
    return int(cast("CursorResult[Any]", result).rowcount or 0)


def get(session: DbSession, failure_id: int) -> FailureRow | None:
    row = session.execute(
        text(f"SELECT {_COLUMNS} FROM failed_issued_coupons WHERE id = :id FOR UPDATE"), {"id": failure_id}
    ).first()
    return cast("FailureRow | None", row)


def revive(session: DbSession, failure_id: int) -> None:
    """An operator retries a DEAD record: it becomes PENDING again, with its history kept."""
    session.execute(
        text("UPDATE failed_issued_coupons SET status = 'PENDING' WHERE id = :id AND is_resolved = 0"),
        {"id": failure_id},
    )


def listing(session: DbSession, status: str | None, limit: int) -> list[FailureRow]:
    where = "WHERE status = :status" if status else ""
    rows = list(
        session.execute(
            text(f"SELECT {_COLUMNS} FROM failed_issued_coupons {where} ORDER BY id DESC LIMIT :limit"),
            {"status": status, "limit": limit},
        )
    )
    return cast("list[FailureRow]", rows)


def counts(session: DbSession) -> dict[str, int]:
    rows = session.execute(text("SELECT status, COUNT(*) FROM failed_issued_coupons GROUP BY status"))
    found = {status: int(n) for status, n in rows}
    return {s: found.get(s, 0) for s in ("PENDING", "RESOLVED", "DEAD")}
