"""One gate decision at a time, for tests and the benches (the API decides its requests in batches)."""

from __future__ import annotations

import uuid

from coupon.adapters.gate import Gate, GateDecision, GateRequest


def reserve_one(gate: Gate, coupon_id: str, user_id: str) -> GateDecision:
    event_id = uuid.uuid4().hex
    result = gate.reserve_many([GateRequest(coupon_id, user_id, event_id, event_id)])[0]
    if isinstance(result, BaseException):
        raise result
    return result
