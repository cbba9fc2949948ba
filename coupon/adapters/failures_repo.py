"""failed_issued_coupons in the DB: the retry machinery's queries."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, text
from sqlalchemy.orm import Session

_COLUMNS = (
    "id, coupon_id, user_id, payload, error, retry_count, is_resolved, status, created_at, last_retried_at, resolved_at"
)


def claim_pending(session: Session, max_retries: int, limit: int) -> list[Any]:
    """Lock a batch of retryable records; SKIP LOCKED lets concurrent job runs take different rows."""
    return list(
        session.execute(
            text(
                f"SELECT {_COLUMNS} FROM failed_issued_coupons"
                " WHERE is_resolved = 0 AND status = 'PENDING' AND retry_count < :max"
                " ORDER BY id LIMIT :limit FOR UPDATE SKIP LOCKED"
            ),
            {"max": max_retries, "limit": limit},
        )
    )


def mark_retried(session: Session, ids: list[int], now: datetime) -> None:
    if ids:
        session.execute(
            text(
                "UPDATE failed_issued_coupons SET retry_count = retry_count + 1, last_retried_at = :now"
                " WHERE id IN :ids"
            ).bindparams(bindparam("ids", expanding=True)),
            {"now": now, "ids": ids},
        )


def mark_dead(session: Session, max_retries: int, settled_before: datetime) -> int:
    """Out of retries, and the last retry has had time to land: DEAD."""
    result = session.execute(
        text(
            "UPDATE failed_issued_coupons SET status = 'DEAD'"
            " WHERE is_resolved = 0 AND status = 'PENDING' AND retry_count >= :max"
            " AND (last_retried_at IS NULL OR last_retried_at < :before)"
        ),
        {"max": max_retries, "before": settled_before},
    )
    return int(result.rowcount or 0)


def get(session: Session, failure_id: int) -> Any:
    return session.execute(
        text(f"SELECT {_COLUMNS} FROM failed_issued_coupons WHERE id = :id FOR UPDATE"), {"id": failure_id}
    ).first()


def revive(session: Session, failure_id: int) -> None:
    """An operator retries a DEAD record: it becomes PENDING again, with its history kept."""
    session.execute(
        text("UPDATE failed_issued_coupons SET status = 'PENDING' WHERE id = :id AND is_resolved = 0"),
        {"id": failure_id},
    )


def listing(session: Session, status: str | None, limit: int) -> list[Any]:
    where = "WHERE status = :status" if status else ""
    return list(
        session.execute(
            text(f"SELECT {_COLUMNS} FROM failed_issued_coupons {where} ORDER BY id DESC LIMIT :limit"),
            {"status": status, "limit": limit},
        )
    )


def counts(session: Session) -> dict[str, int]:
    rows = session.execute(text("SELECT status, COUNT(*) FROM failed_issued_coupons GROUP BY status"))
    found = {status: int(n) for status, n in rows}
    return {s: found.get(s, 0) for s in ("PENDING", "RESOLVED", "DEAD")}
