"""reserve.lua and release.lua on the real Redis: many requests in one call decide as separate calls would."""
from __future__ import annotations

import time
import uuid

from coupon.adapters import keys
from coupon.adapters.gate import Gate, GateMeta, GateOutcome, GateSnapshot
from coupon.adapters.redis_client import build_redis
from tests.integration.conftest import TEST_REDIS_URL

A, D, S = GateOutcome.ACCEPTED, GateOutcome.DUPLICATE, GateOutcome.SOLD_OUT


def _gate() -> Gate:
    return Gate(build_redis(TEST_REDIS_URL))


def _coupon(gate: Gate, total: int, starts_in_s: float = -60, ends_in_s: float = 3600, status: str = "ACTIVE") -> str:
    cid = str(uuid.uuid4())
    now_ms = int(time.time() * 1000)
    meta = GateMeta(total, now_ms + int(starts_in_s * 1000), now_ms + int(ends_in_s * 1000), status)
    gate.install(cid, GateSnapshot(meta, {}))
    return cid


def test_one_call_decides_in_order_with_duplicates_and_stock(rdb) -> None:
    gate = _gate()
    cid = _coupon(gate, 3)
    got = gate.reserve_many([(cid, u) for u in ("u1", "u2", "u1", "u3", "u4", "u2")])
    assert [(d.outcome, d.rank) for d in got] == [(A, 1), (A, 2), (D, 1), (A, 3), (S, 0), (D, 2)]
    assert rdb.get(keys.issued(cid)) == "3"
    assert rdb.zrange(keys.participants(cid), 0, -1, withscores=True) == [("u1", 1), ("u2", 2), ("u3", 3)]


def test_requests_for_several_coupons_in_one_batch(rdb) -> None:
    gate = _gate()
    c1, c2 = _coupon(gate, 1), _coupon(gate, 5)
    got = gate.reserve_many([(c1, "a"), (c2, "a"), (c1, "b"), (c2, "b")])
    assert [d.outcome for d in got] == [A, A, S, A]
    assert (rdb.get(keys.issued(c1)), rdb.get(keys.issued(c2))) == ("1", "2")


def test_closed_windows_and_disabled_change_nothing(rdb) -> None:
    gate = _gate()
    cases = {
        GateOutcome.NOT_STARTED: _coupon(gate, 5, starts_in_s=3600, ends_in_s=7200),
        GateOutcome.ENDED: _coupon(gate, 5, starts_in_s=-7200, ends_in_s=-3600),
        GateOutcome.DISABLED: _coupon(gate, 5, status="DISABLED"),
    }
    for outcome, cid in cases.items():
        assert [d.outcome for d in gate.reserve_many([(cid, "x"), (cid, "y")])] == [outcome, outcome]
        assert rdb.get(keys.issued(cid)) == "0" and rdb.zcard(keys.participants(cid)) == 0


def test_missing_meta_asks_for_a_rebuild() -> None:
    gate = _gate()
    got = gate.reserve_many([(str(uuid.uuid4()), "x")])
    assert got[0].outcome is GateOutcome.NEEDS_REBUILD


def test_release_undoes_exactly_one_reservation(rdb) -> None:
    gate = _gate()
    cid = _coupon(gate, 2)
    gate.reserve_many([(cid, "u1"), (cid, "u2")])
    assert gate.release(cid, "u1") is True
    assert gate.release(cid, "u1") is False  # nothing left to release: nothing changes
    assert gate.release(cid, "stranger") is False
    assert rdb.get(keys.issued(cid)) == "1" and rdb.zrange(keys.participants(cid), 0, -1) == ["u2"]
    assert gate.reserve_many([(cid, "u3")])[0].outcome is A


def test_script_cache_lost_is_reloaded(rdb) -> None:
    gate = _gate()
    cid = _coupon(gate, 2)
    rdb.script_flush()
    assert gate.reserve_many([(cid, "u1")])[0].outcome is A
