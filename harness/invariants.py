"""The design's invariants, checked against the real DB and Redis after every concurrent run."""

from __future__ import annotations

from collections.abc import Iterable

import redis
import sqlalchemy as sa

from coupon.adapters import keys
from coupon.domain.vocabulary import to_epoch_ms
from harness.processes import wait_for


def q(engine: sa.Engine, sql: str, **params: object) -> list[sa.Row]:
    with engine.connect() as conn:
        return list(conn.execute(sa.text(sql), params))


def scalar(engine: sa.Engine, sql: str, **params: object) -> object:
    return q(engine, sql, **params)[0][0]


def issued_rows(engine: sa.Engine, coupon_id: str) -> int:
    return int(scalar(engine, "SELECT COUNT(*) FROM issued_coupons WHERE coupon_id = :c", c=coupon_id))


def settled(engine: sa.Engine, coupon_id: str) -> int:
    """Requests with a final answer in the DB: issued, rejected, or an unresolved failure record."""
    return int(
        scalar(
            engine,
            "SELECT (SELECT COUNT(*) FROM issued_coupons WHERE coupon_id = :c)"
            " + (SELECT COUNT(*) FROM issue_rejections WHERE coupon_id = :c)"
            " + (SELECT COUNT(DISTINCT user_id) FROM failed_issued_coupons WHERE coupon_id = :c AND is_resolved = 0)",
            c=coupon_id,
        )
    )


def wait_drained(engine: sa.Engine, coupon_id: str, expected: int, timeout: float = 120) -> None:
    """Wait until `expected` accepted requests of the coupon have a final answer in the DB."""
    wait_for(
        lambda: settled(engine, coupon_id) >= expected,
        timeout,
        f"{expected} requests of coupon {coupon_id} to reach the DB (at {settled(engine, coupon_id)})",
        interval=0.2,
    )


def check_invariants(
    engine: sa.Engine,
    rdb: redis.Redis,
    coupon_id: str,
    accepted_users: Iterable[str],
    redis_intact: bool = True,
    unconfirmed: Iterable[str] = (),
) -> dict[str, int]:
    """Invariants 1-3 always (a REJECTED row is a broken 202, even after Redis lost data); 5 (Redis against the DB)
    unless `redis_intact` is False: after a fault that can leave unconfirmed holds for the sweeper.

    `accepted_users` were told 202 and must own a coupon; `unconfirmed` were told "outcome unknown" (E5034) and may.
    """
    accepted = set(accepted_users)
    total, issued_count = q(engine, "SELECT total_quantity, issued_count FROM coupons WHERE id = :c", c=coupon_id)[0]
    rows = q(engine, "SELECT user_id FROM issued_coupons WHERE coupon_id = :c", c=coupon_id)
    owners = [r.user_id for r in rows]
    rejected = {r.user_id for r in q(engine, "SELECT user_id FROM issue_rejections WHERE coupon_id = :c", c=coupon_id)}
    pending = {
        r.user_id
        for r in q(
            engine, "SELECT user_id FROM failed_issued_coupons WHERE coupon_id = :c AND is_resolved = 0", c=coupon_id
        )
    }
    # 1. never more rows than stock, and the DB's counter agrees with the rows.
    assert len(owners) <= total, f"over-issued: {len(owners)} rows for quantity {total}"
    assert issued_count == len(owners), f"issued_count {issued_count} != rows {len(owners)}"
    # 2. at most one row per user.
    assert len(owners) == len(set(owners)), "a user holds two coupons"
    # 3. every 202 ends as exactly one row (or a failure record still being retried), never a rejection or nothing.
    assert not rejected, f"the DB stock guard rejected {len(rejected)} accepted requests, e.g. {sorted(rejected)[:3]}"
    lost = accepted - set(owners) - pending
    assert not lost, f"{len(lost)} accepted requests ended with nothing, e.g. {sorted(lost)[:3]}"
    strays = set(owners) - accepted - set(unconfirmed)
    assert not strays, f"{len(strays)} rows for users never accepted, e.g. {sorted(strays)[:3]}"
    if redis_intact:
        # 5. Redis reservations == DB issued + unresolved failures.
        reserved = int(rdb.get(keys.issued(coupon_id)) or 0)
        assert reserved == len(owners) + len(pending), (
            f"Redis reserved {reserved} != DB issued {len(owners)} + pending failures {len(pending)}"
        )
        participants = set(rdb.zrange(keys.participants(coupon_id), 0, -1))
        assert participants == set(owners) | pending, "Redis participants differ from DB holders"
    return {"total": total, "issued": len(owners), "rejected": len(rejected), "pending": len(pending)}


def db_meta(engine: sa.Engine, coupon_id: str) -> dict[str, str]:
    """The coupon row as the gate's meta hash should hold it (what a rebuild would install)."""
    total, starts, ends, status = q(
        engine,
        "SELECT total_quantity, issue_starts_at, expires_at, status FROM coupons WHERE id = :c",
        c=coupon_id,
    )[0]
    return {"total": str(total), "starts": str(to_epoch_ms(starts)), "ends": str(to_epoch_ms(ends)), "status": status}


def assert_gate_matches_db(engine: sa.Engine, rdb: redis.Redis, coupon_id: str) -> dict[str, str]:
    """The admin-change invariant: the gate's meta (total, window, status) equals the committed coupon row."""
    meta = rdb.hgetall(keys.meta(coupon_id))
    expected = db_meta(engine, coupon_id)
    assert meta == expected, f"gate meta {meta} != DB row {expected}"
    return meta
