"""Admin changes of a coupon (PATCH /api/coupon/{id}, `flask coupons ...`): the kill switch, the issue window, the
quantity and the name, in the DB and in the Redis gate together, each recorded in coupon_events.

Why the gate can never disagree with the DB after a change:

1. Every writer of a coupon's gate meta holds the coupon's row lock while it writes: this module from its
   SELECT ... FOR UPDATE to its commit, the rebuild (coupon.services.gate_recovery.rebuild_gate) from its FOR
   UPDATE read to the end of gate.install, creation from its insert to its commit. Writers therefore run one at a
   time, in the order of their commits; the consumer's stock guard takes the same lock and reads the committed
   total.
2. Inside the lock, update_meta.lua checks and writes the meta in one atomic step against reserve.lua: a total
   below the reservations is refused there, with no window between check and write. The very next reserve.lua
   call sees the new meta (on a Redis Cluster too: the script runs on the coupon's node, all keys share its tag).
3. A missing meta is left missing and the DB commits the new values: the rebuild that the next request runs waits
   for the row lock, so it reads the committed row. A rebuild that took the lock first installs the old values
   and only then lets this change lock the row and write the new ones over them.
4. When anything fails after the script may have written (a Redis timeout, a failed flush, a failed commit), the
   gate is resynced under a new row lock to what the DB holds: the old values, or the new ones if the commit
   did go through and only its reply was lost (the change's event row tells). Only when the DB cannot be reached
   at all are the old values written back blindly; if that fails too, an error line names `flask rebuild-gate`.

Known limit: between the script's write and a commit that then fails (milliseconds), requests may reserve units
of a raised total that the DB never got; after the resync they exceed the total, and the consumer's DB stock
guard turns them into visible rejections (issue_rejections), never into oversold or silently lost coupons.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from coupon.adapters import coupon_events_repo, coupons_repo
from coupon.adapters.db_session import DbSession
from coupon.adapters.gate import Gate, GateMeta, MetaUpdate
from coupon.domain.commands import CouponPatch
from coupon.domain.errors import CouponNotFound, QuantityBelowReserved, ValidationFailed
from coupon.domain.models import Coupon, CouponEvent
from coupon.domain.vocabulary import CouponAction, CouponStatus, iso, to_epoch_ms, utcnow
from coupon.services.catalog import Stock
from coupon.services.gate_recovery import gate_meta
from coupon.services.unit_of_work import unit_of_work

log = logging.getLogger(__name__)

# (API field, model attribute): what a patch may change, in the order the events list them.
PATCH_FIELDS: tuple[tuple[str, str], ...] = (
    ("status", "status"),
    ("issueStartsAt", "issue_starts_at"),
    ("expiresAt", "expires_at"),
    ("totalQuantity", "total_quantity"),
    ("name", "name"),
)

Changes = dict[str, dict[str, Any]]


@dataclass(frozen=True)
class CouponUpdate:
    """The coupon after the change, its stock, and what the change did (action None: nothing to change)."""

    coupon: Coupon
    stock: Stock
    action: CouponAction | None
    changes: Changes


@dataclass
class _Attempt:
    """What the recovery needs to know once the gate may hold the new meta."""

    gate_touched: bool = False
    old_meta: GateMeta | None = None
    event_id: int | None = None
    action: CouponAction | None = None
    changes: Changes = field(default_factory=dict)


def changed_values(coupon: Coupon, patch: CouponPatch) -> dict[str, Any]:
    """{model attribute: new value} for the fields the patch sets to something else than the coupon holds."""
    out: dict[str, Any] = {}
    for _, attr in PATCH_FIELDS:
        value = getattr(patch, attr)
        if value is not None and value != getattr(coupon, attr):
            out[attr] = value
    return out


def action_of(new: dict[str, Any], now: datetime) -> CouponAction:
    """The event's action: a status change names it; else an expiry moved to now or earlier closes; else updated."""
    status = new.get("status")
    if status is CouponStatus.DISABLED:
        return CouponAction.DISABLED
    if status is CouponStatus.ACTIVE:
        return CouponAction.ENABLED
    expires = new.get("expires_at")
    if expires is not None and expires <= now:
        return CouponAction.CLOSED
    return CouponAction.UPDATED


def _render(value: Any) -> Any:
    if isinstance(value, CouponStatus):
        return value.value
    if isinstance(value, datetime):
        return iso(value)
    return value


def describe(coupon: Coupon, new: dict[str, Any]) -> Changes:
    """{API field: {"from": old, "to": new}} of a change, as coupon_events records it."""
    return {
        api: {"from": _render(getattr(coupon, attr)), "to": _render(new[attr])}
        for api, attr in PATCH_FIELDS
        if attr in new
    }


def _check_window(coupon: Coupon, new: dict[str, Any]) -> None:
    starts = new.get("issue_starts_at", coupon.issue_starts_at)
    ends = new.get("expires_at", coupon.expires_at)
    if ends > starts:
        return
    if "expires_at" in new:
        problem = {"field": "expiresAt", "reason": "must be after issueStartsAt"}
    else:
        problem = {"field": "issueStartsAt", "reason": "must be before expiresAt"}
    raise ValidationFailed(f"Invalid fields: {problem['field']}", data=[problem])


def update_coupon(session: DbSession, gate: Gate, coupon_id: str, patch: CouponPatch, actor: str) -> CouponUpdate:
    """Apply `patch` to the coupon in the DB and its gate, recorded as one coupon_events row by `actor`.

    CouponNotFound; ValidationFailed when the window would not end after it starts; QuantityBelowReserved when the
    total would fall below the gate's reservations or the DB's issued rows. Any failure leaves DB and gate as they
    were (see the module docstring); a patch that changes nothing writes nothing.
    """
    attempt = _Attempt()
    try:
        return _apply(session, gate, coupon_id, patch, actor, attempt)
    except BaseException:
        if not attempt.gate_touched:
            raise
        recovered = _resync(session, gate, coupon_id, attempt)
        if recovered is None:
            raise
        return recovered


def _apply(
    session: DbSession, gate: Gate, coupon_id: str, patch: CouponPatch, actor: str, attempt: _Attempt
) -> CouponUpdate:
    with unit_of_work(session):
        coupon = coupons_repo.lock(session, coupon_id)
        if coupon is None:
            raise CouponNotFound(data={"couponId": coupon_id})
        new = changed_values(coupon, patch)
        _check_window(coupon, new)
        total = new.get("total_quantity", coupon.total_quantity)
        if not new:
            return CouponUpdate(coupon, Stock(total, gate.reserved(coupon_id), coupon.issued_count), None, {})
        if total < coupon.issued_count:
            raise QuantityBelowReserved(data={"reserved": gate.reserved(coupon_id), "issued": coupon.issued_count})
        old_meta = gate_meta(coupon)
        new_meta = GateMeta(
            total=total,
            starts_ms=to_epoch_ms(new.get("issue_starts_at", coupon.issue_starts_at)),
            ends_ms=to_epoch_ms(new.get("expires_at", coupon.expires_at)),
            status=new.get("status", coupon.status).value,
        )
        if new_meta == old_meta:  # only the name changes: the gate has nothing to do with it
            reserved = gate.reserved(coupon_id)
        else:
            attempt.old_meta, attempt.gate_touched = old_meta, True  # from here on the gate may hold new_meta
            # Only a lowering is checked against the reservations: the kill switch or a new window always goes in.
            result = gate.update_meta(coupon_id, new_meta, guard=total < coupon.total_quantity)
            if result.outcome is MetaUpdate.BELOW_RESERVED:
                attempt.gate_touched = False
                raise QuantityBelowReserved(data={"reserved": result.reserved, "issued": coupon.issued_count})
            if result.outcome is MetaUpdate.MISSING:
                # Nothing written; the rebuild will install the committed row with what the DB holds as holders.
                attempt.gate_touched = False
                reserved = len(coupons_repo.holders(session, coupon_id))
                if total < reserved:
                    raise QuantityBelowReserved(data={"reserved": reserved, "issued": coupon.issued_count})
            else:
                reserved = result.reserved
        now = utcnow()  # under the row lock: the events of one coupon are in commit order, and so are their times
        attempt.action, attempt.changes = action_of(new, now), describe(coupon, new)
        for attr, value in new.items():
            setattr(coupon, attr, value)
        event = coupon_events_repo.add(
            session,
            CouponEvent(coupon_id=coupon_id, actor=actor, at=now, action=attempt.action, changes=attempt.changes),
        )
        attempt.event_id = event.id
        return CouponUpdate(coupon, Stock(total, reserved, coupon.issued_count), attempt.action, attempt.changes)


def _resync(session: DbSession, gate: Gate, coupon_id: str, attempt: _Attempt) -> CouponUpdate | None:
    """After a failure once the gate may hold the new meta: under a new row lock, give the gate the DB's values.

    Returns the update when the change did commit after all (its event row exists: only the commit's reply was
    lost), else None (the caller re-raises the original error).
    """
    assert attempt.old_meta is not None
    try:
        with unit_of_work(session):
            coupon = coupons_repo.lock(session, coupon_id)
            committed = attempt.event_id is not None and coupon_events_repo.exists(session, attempt.event_id)
            truth = gate_meta(coupon) if coupon is not None else attempt.old_meta
            result = gate.update_meta(coupon_id, truth, guard=False)
    except Exception:
        log.exception("coupon %s: could not resync the gate with the DB after a failed change", coupon_id)
        with contextlib.suppress(Exception):
            gate.update_meta(coupon_id, attempt.old_meta, guard=False)
            log.warning("coupon %s: the gate's meta was put back to its values before the change", coupon_id)
            return None
        log.error(
            "coupon %s: the gate may hold a change the DB does not have; run `flask rebuild-gate %s`",
            coupon_id,
            coupon_id,
        )
        return None
    if committed and coupon is not None:
        log.warning("coupon %s: the change committed although its commit reported an error; kept", coupon_id)
        stock = Stock(coupon.total_quantity, result.reserved, coupon.issued_count)
        return CouponUpdate(coupon, stock, attempt.action, attempt.changes)
    log.warning("coupon %s: the change failed; the gate holds the DB's values again", coupon_id)
    return None
