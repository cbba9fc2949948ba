"""Reconciliation: does Redis agree with the DB for one coupon? Meaningful once the pipeline has drained."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import text

from coupon.adapters.db_session import DbSession
from coupon.adapters.gate import Gate
from coupon.domain.vocabulary import utcnow
from coupon.services.catalog import get_coupon

# Unresolved = PENDING or DEAD (domain.HOLDING_FAILURE_STATUSES): both still hold their stock unit in Redis.
_HOLDERS = text(
    "SELECT user_id FROM issued_coupons WHERE coupon_id = :c"
    " UNION SELECT user_id FROM failed_issued_coupons WHERE coupon_id = :c AND is_resolved = 0"
)
_COUNTS = text(
    "SELECT"
    " (SELECT COUNT(*) FROM issued_coupons WHERE coupon_id = :c) AS issued_rows,"
    " (SELECT COUNT(DISTINCT user_id) FROM failed_issued_coupons WHERE coupon_id = :c AND is_resolved = 0)"
    "   AS unresolved_failures,"
    " (SELECT COUNT(*) FROM issue_rejections WHERE coupon_id = :c) AS rejections"
)


@dataclass
class Reconciliation:
    coupon_id: str
    total: int
    issued_count: int
    issued_rows: int
    unresolved_failures: int
    rejections: int
    redis_reserved: int
    redis_participants: int
    problems: list[str] = field(default_factory=list)
    # Who is behind a mismatch: user id -> their hold state in Redis (P/U/R/C, or "rebuilt").
    redis_only: dict[str, str] = field(default_factory=dict)
    db_only: list[str] = field(default_factory=list)
    # The sale ended and the sweeper deleted its gate: only the DB is compared with itself.
    gate_retired: bool = False

    @property
    def ok(self) -> bool:
        return not self.problems


def reconcile(session: DbSession, gate: Gate, coupon_id: str) -> Reconciliation:
    coupon = get_coupon(session, coupon_id)
    row = session.execute(_COUNTS, {"c": coupon_id}).one()
    result = Reconciliation(
        coupon_id=coupon_id,
        total=coupon.total_quantity,
        issued_count=coupon.issued_count,
        issued_rows=int(row.issued_rows),
        unresolved_failures=int(row.unresolved_failures),
        rejections=int(row.rejections),
        redis_reserved=gate.reserved(coupon_id),
        redis_participants=gate.participant_count(coupon_id),
    )
    if result.issued_rows > result.total:
        result.problems.append(f"over-issued: {result.issued_rows} rows for a quantity of {result.total}")
    if result.issued_count != result.issued_rows:
        result.problems.append(f"issued_count {result.issued_count} != {result.issued_rows} issued rows")
    if result.rejections:
        result.problems.append(
            f"the DB stock guard rejected {result.rejections} accepted requests: the gate admitted more than the"
            " stock, and each of them had been answered 202"
        )
    if coupon.expires_at <= utcnow() and not gate.has_meta(coupon_id):
        result.gate_retired = True
        return result
    held = result.issued_rows + result.unresolved_failures
    if result.redis_reserved != held:
        result.problems.append(
            f"Redis reserved {result.redis_reserved} != DB issued {result.issued_rows}"
            f" + unresolved (PENDING or DEAD) failures {result.unresolved_failures}"
            " (requests still on Kafka count here too)"
        )
    in_db = {r.user_id for r in session.execute(_HOLDERS, {"c": coupon_id})}
    in_redis = {h.user_id: h.state or "rebuilt" for h in gate.reservations(coupon_id)}
    result.redis_only = {u: state for u, state in sorted(in_redis.items()) if u not in in_db}
    result.db_only = sorted(u for u in in_db if u not in in_redis)
    if result.redis_only:
        result.problems.append(
            f"{len(result.redis_only)} Redis reservations have no DB row or failure record (in flight, or unconfirmed:"
            " `flask reconcile --repair` settles those older than SETTLE_AFTER_SECONDS)"
        )
    if result.db_only:
        result.problems.append(f"{len(result.db_only)} DB holders have no Redis reservation")
    if result.redis_participants != result.redis_reserved:
        result.problems.append(
            f"Redis participants {result.redis_participants} != Redis reserved {result.redis_reserved}"
        )
    return result


def reconcile_when_drained(
    session: DbSession,
    gate: Gate,
    coupon_id: str,
    wait_s: float,
    on_wait: Callable[[Reconciliation, float], None] = lambda result, left_s: None,
    *,
    poll_s: float = 0.5,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Reconciliation:
    """reconcile(), looked at again every `poll_s` until Redis and the DB agree or `wait_s` passed: a sale whose
    consumers are still draining agrees once they are done. `on_wait(result, seconds_left)` sees each disagreement
    it waits on. The last look is returned, agreeing or not."""
    deadline = clock() + wait_s
    while True:
        result = reconcile(session, gate, coupon_id)
        left = deadline - clock()
        if result.ok or left <= 0:
            return result
        on_wait(result, left)
        # Each look in a transaction of its own: under REPEATABLE READ the same one would never see a new row.
        session.rollback()
        sleep(min(poll_s, left))
