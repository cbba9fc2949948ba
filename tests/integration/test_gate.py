"""reserve.lua and release.lua on the real Redis, standalone and Cluster: many requests in one call decide as
separate calls would, and racing processes reserve exactly the stock."""

from __future__ import annotations

import json
import random
import subprocess
import sys
import time
import uuid
from collections import Counter
from typing import Any

import pytest

from coupon.adapters import keys
from coupon.adapters.gate import (
    Gate,
    GateDecision,
    GateMeta,
    GateOutcome,
    GateRequest,
    GateSnapshot,
    Hold,
    HoldMode,
    MetaUpdate,
)
from harness.processes import ROOT
from tests.integration.conftest import TEST_REDIS_CLUSTER_NODES, TEST_REDIS_URL

A, D, S = GateOutcome.ACCEPTED, GateOutcome.DUPLICATE, GateOutcome.SOLD_OUT

pytestmark = pytest.mark.parametrize("redis_mode", ["standalone", "cluster"], indirect=True)


@pytest.fixture
def gate(gate_client: Any) -> Gate:
    return Gate(gate_client)


def _reserve(gate: Gate, pairs: list[tuple[str, str]]) -> list[Any]:
    """Each (coupon, user) as a fresh request: its own token and event id."""
    requests = []
    for coupon_id, user_id in pairs:
        event_id = uuid.uuid4().hex
        requests.append(GateRequest(coupon_id, user_id, event_id, event_id))
    return gate.reserve_many(requests)


def _coupon(gate: Gate, total: int, starts_in_s: float = -60, ends_in_s: float = 3600, status: str = "ACTIVE") -> str:
    cid = str(uuid.uuid4())
    now_ms = int(time.time() * 1000)
    meta = GateMeta(total, now_ms + int(starts_in_s * 1000), now_ms + int(ends_in_s * 1000), status)
    gate.install(cid, GateSnapshot(meta, {}))
    return cid


def test_one_call_decides_in_order_with_duplicates_and_stock(gate: Gate, rdb) -> None:
    cid = _coupon(gate, 3)
    got = _reserve(gate, [(cid, u) for u in ("u1", "u2", "u1", "u3", "u4", "u2")])
    assert [(d.outcome, d.rank) for d in got] == [(A, 1), (A, 2), (D, 1), (A, 3), (S, 0), (D, 2)]
    assert rdb.get(keys.issued(cid)) == "3"
    assert rdb.zrange(keys.participants(cid), 0, -1, withscores=True) == [("u1", 1), ("u2", 2), ("u3", 3)]


def test_requests_for_several_coupons_in_one_batch(gate: Gate, rdb) -> None:
    c1, c2 = _coupon(gate, 1), _coupon(gate, 5)
    got = _reserve(gate, [(c1, "a"), (c2, "a"), (c1, "b"), (c2, "b")])
    assert [d.outcome for d in got] == [A, A, S, A]
    assert (rdb.get(keys.issued(c1)), rdb.get(keys.issued(c2))) == ("1", "2")


def test_closed_windows_and_disabled_change_nothing(gate: Gate, rdb) -> None:
    cases = {
        GateOutcome.NOT_STARTED: _coupon(gate, 5, starts_in_s=3600, ends_in_s=7200),
        GateOutcome.ENDED: _coupon(gate, 5, starts_in_s=-7200, ends_in_s=-3600),
        GateOutcome.DISABLED: _coupon(gate, 5, status="DISABLED"),
    }
    for outcome, cid in cases.items():
        assert [d.outcome for d in _reserve(gate, [(cid, "x"), (cid, "y")])] == [outcome, outcome]
        assert rdb.get(keys.issued(cid)) == "0" and rdb.zcard(keys.participants(cid)) == 0


def test_missing_meta_asks_for_a_rebuild(gate: Gate) -> None:
    got = _reserve(gate, [(str(uuid.uuid4()), "x")])
    assert got[0].outcome is GateOutcome.NEEDS_REBUILD


def test_release_undoes_exactly_one_reservation(gate: Gate, rdb) -> None:
    cid = _coupon(gate, 2)
    first, _ = _reserve(gate, [(cid, "u1"), (cid, "u2")])
    assert (
        gate.release_many([Hold(cid, "u1", "another-event")]) == 0
    )  # a newer reservation is never undone by an old caller
    assert gate.release_many([Hold(cid, "u1", first.event_id)]) == 1
    assert gate.release_many([Hold(cid, "u1", first.event_id)]) == 0  # nothing left to release: nothing changes
    assert gate.release_many([Hold(cid, "stranger", first.event_id)]) == 0
    assert rdb.get(keys.issued(cid)) == "1" and rdb.zrange(keys.participants(cid), 0, -1) == ["u2"]
    assert _reserve(gate, [(cid, "u3")])[0].outcome is A


def test_script_cache_lost_is_reloaded(gate: Gate, rdb) -> None:
    cid = _coupon(gate, 2)
    rdb.script_flush()
    assert _reserve(gate, [(cid, "u1")])[0].outcome is A


def _coupons_on_distinct_slots(gate: Gate, rdb: Any, redis_mode: str, totals: list[int]) -> list[str]:
    """One coupon per total; on the cluster, on as many different masters as there are coupons (≤ masters)."""
    if redis_mode != "cluster":
        return [_coupon(gate, t) for t in totals]
    ids: list[str] = []
    nodes: set[str] = set()
    masters = len(rdb.get_primaries())
    while len(ids) < len(totals):
        cid = str(uuid.uuid4())
        node = rdb.get_node_from_key(keys.meta(cid)).name
        if node in nodes and len(nodes) < min(masters, len(totals)):
            continue
        nodes.add(node)
        ids.append(cid)
    now_ms = int(time.time() * 1000)
    for cid, total in zip(ids, totals):
        gate.install(cid, GateSnapshot(GateMeta(total, now_ms - 60_000, now_ms + 3_600_000, "ACTIVE"), {}))
    return ids


def _race(redis_mode: str, shares: list[list[tuple[str, str]]], concurrency: int) -> list[list[Any]]:
    """Run each share in its own gevent process, all released at once; results per share."""
    procs = []
    for share in shares:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.support.gate_race"],
            cwd=ROOT,
            text=True,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        spec = {
            "redis_url": TEST_REDIS_URL,
            "concurrency": concurrency,
            "requests": share,
            "cluster_nodes": TEST_REDIS_CLUSTER_NODES if redis_mode == "cluster" else "",
        }
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(json.dumps(spec) + "\n")
        proc.stdin.flush()
        procs.append(proc)
    for proc in procs:  # every process connected: a blocking readline is the barrier
        assert proc.stdout.readline().strip() == "READY"
    for proc in procs:
        proc.stdin.write("go\n")
        proc.stdin.flush()
    out = []
    for proc in procs:
        stdout, _ = proc.communicate(timeout=120)
        assert proc.returncode == 0
        out.append(json.loads(stdout))
    return out


@pytest.mark.slow
def test_racing_processes_reserve_exactly_the_stock_once_per_user(gate: Gate, rdb, redis_mode: str) -> None:
    totals = [1, 100, 250]
    coupons = _coupons_on_distinct_slots(gate, rdb, redis_mode, totals)
    users = [f"user-{n}" for n in range(600)]
    # Every user asks for every coupon twice, from two different processes.
    requests = [(c, u) for c in coupons for u in users] * 2
    random.Random(7).shuffle(requests)
    shares = [requests[i::4] for i in range(4)]
    results = _race(redis_mode, shares, concurrency=200)
    decided: list[tuple[str, str, str, int]] = [
        (c, u, outcome, rank) for share, got in zip(shares, results) for (c, u), (outcome, rank) in zip(share, got)
    ]
    assert Counter(outcome for *_, outcome, _ in decided).keys() <= {"ACCEPTED", "DUPLICATE", "SOLD_OUT"}
    for coupon, total in zip(coupons, totals):
        mine = [d for d in decided if d[0] == coupon]
        winners = {u: rank for _, u, outcome, rank in mine if outcome == "ACCEPTED"}
        assert len(winners) == len([d for d in mine if d[2] == "ACCEPTED"]), "a user was accepted twice"
        assert sorted(winners.values()) == list(range(1, total + 1)), "ranks are not exactly 1..stock"
        for _, u, outcome, rank in mine:
            if outcome == "DUPLICATE":
                assert winners.get(u) == rank, f"{u} told duplicate without holding rank {rank}"
        assert int(rdb.get(keys.issued(coupon))) == total
        assert dict(rdb.zrange(keys.participants(coupon), 0, -1, withscores=True)) == winners
    if redis_mode == "cluster":
        assert len({rdb.get_node_from_key(keys.meta(c)).name for c in coupons}) == 3, "coupons not spread over masters"


def test_release_many_undoes_exactly_the_held_reservations_across_coupons(gate: Gate, rdb) -> None:
    c1, c2 = _coupon(gate, 5), _coupon(gate, 5)
    d = _reserve(gate, [(c1, "a"), (c1, "b"), (c2, "a"), (c2, "c")])
    # "z" never reserved and a second release of ("c1", "a") change nothing.
    holds = [
        Hold(c1, "a", d[0].event_id),
        Hold(c2, "c", d[3].event_id),
        Hold(c1, "z", "x"),
        Hold(c1, "a", d[0].event_id),
    ]
    assert gate.release_many(holds) == 2
    assert rdb.get(keys.issued(c1)) == "1" and rdb.get(keys.issued(c2)) == "1"
    assert rdb.zrange(keys.participants(c1), 0, -1) == ["b"]
    assert rdb.zrange(keys.participants(c2), 0, -1) == ["a"]


def test_release_many_reloads_a_lost_script(gate: Gate, rdb, gate_client: Any) -> None:
    cid = _coupon(gate, 5)
    [d] = _reserve(gate, [(cid, "a")])
    gate_client.script_flush()
    assert gate.release_many([Hold(cid, "a", d.event_id)]) == 1
    assert rdb.get(keys.issued(cid)) == "0"


# --- idempotent decisions (issue: slow faults) ----------------------------------------------------------------------


def test_the_same_request_run_twice_gets_the_same_decision_rank_and_event(gate: Gate, rdb) -> None:
    cid = _coupon(gate, 1)
    request = GateRequest(cid, "u1", "tok-1", "ev-1")
    first = gate.reserve_many([request])[0]
    again = gate.reserve_many([request, GateRequest(cid, "u1", "tok-2", "ev-2")])  # a re-run, then another request
    assert first == GateDecision(A, 1, "ev-1")
    assert again[0] == first, "a re-run of the same reservation must not turn into a duplicate"
    assert again[1].outcome is D
    assert _reserve(gate, [(cid, "u2")])[0].outcome is S  # the re-run did not take a second unit
    assert rdb.get(keys.issued(cid)) == "1"


def test_a_confirmed_request_replays_and_a_settling_one_says_so(gate: Gate, rdb) -> None:
    cid = _coupon(gate, 5)
    request = GateRequest(cid, "u1", "tok", "ev")
    gate.reserve_many([request])
    assert gate.settle_many(HoldMode.CONFIRM, [Hold(cid, "u1", "ev")]) == [True]
    assert gate.reserve_many([request])[0] == GateDecision(GateOutcome.REPLAYED, 1, "ev")
    other = GateRequest(cid, "u2", "tok2", "ev2")
    gate.reserve_many([other])
    assert gate.settle_many(HoldMode.REVOKE, [Hold(cid, "u2", "ev2")], cutoff_ms=int(time.time() * 1000) + 1000) == [
        True
    ]
    assert gate.reserve_many([other])[0].outcome is GateOutcome.SETTLING
    assert gate.settle_many(HoldMode.CONFIRM, [Hold(cid, "u2", "ev2")]) == [False], "a revoked hold can't be confirmed"


def test_an_acknowledged_record_whose_hold_redis_lost_is_confirmed_but_a_released_one_is_not(gate: Gate, rdb) -> None:
    """Confirm without a hold: the gate lost (its rebuild counts the record) or rebuilt with the user: a 202. The
    hold released by the sweeper (the user no longer a participant): no 202."""
    cid = _coupon(gate, 5)
    gate.reserve_many([GateRequest(cid, "lost", "t1", "e1"), GateRequest(cid, "fenced", "t2", "e2")])
    gate.release_many([Hold(cid, "fenced", "e2")])
    assert gate.settle_many(HoldMode.CONFIRM, [Hold(cid, "fenced", "e2")]) == [False]
    rdb.delete(*keys.gate_keys(cid))  # Redis lost the gate while the record was in flight
    assert gate.settle_many(HoldMode.CONFIRM, [Hold(cid, "lost", "e1")]) == [True]
    gate.install(cid, GateSnapshot(GateMeta(5, 0, 4102444800000, "ACTIVE"), {"lost": 1}))  # rebuilt, counted
    assert gate.settle_many(HoldMode.CONFIRM, [Hold(cid, "lost", "e1"), Hold(cid, "fenced", "e2")]) == [True, False]


def test_an_unconfirmed_hold_is_taken_over_by_the_users_next_request(gate: Gate, rdb) -> None:
    cid = _coupon(gate, 5)
    gate.reserve_many([GateRequest(cid, "u1", "tok", "ev")])
    assert gate.reserve_many([GateRequest(cid, "u1", "tok2", "ev2")])[0].outcome is D  # still in flight
    gate.settle_many(HoldMode.UNCONFIRM, [Hold(cid, "u1", "ev")])
    taken = gate.reserve_many([GateRequest(cid, "u1", "tok2", "ev2")])[0]
    assert taken == GateDecision(A, 1, "ev"), "the take-over republishes the first record's event"
    assert rdb.get(keys.issued(cid)) == "1"


def test_update_meta_writes_what_the_next_reserve_reads(gate: Gate, rdb) -> None:
    cid = _coupon(gate, 2)
    assert [d.outcome for d in _reserve(gate, [(cid, "a"), (cid, "b"), (cid, "c")])] == [A, A, S]
    meta = gate.read_meta(cid)
    assert meta is not None
    raised = GateMeta(3, meta.starts_ms, meta.ends_ms, meta.status)
    result = gate.update_meta(cid, raised)
    assert (result.outcome, result.reserved) == (MetaUpdate.WRITTEN, 2) and gate.read_meta(cid) == raised
    assert _reserve(gate, [(cid, "c")])[0].outcome is A
    gate.update_meta(cid, GateMeta(3, meta.starts_ms, meta.ends_ms, "DISABLED"))
    assert _reserve(gate, [(cid, "d")])[0].outcome is GateOutcome.DISABLED
    gate.update_meta(cid, GateMeta(9, meta.starts_ms, meta.starts_ms + 1, "ACTIVE"))  # closed: ends in the past
    assert _reserve(gate, [(cid, "d")])[0].outcome is GateOutcome.ENDED


def test_update_meta_refuses_a_total_below_the_reservations_and_changes_nothing(gate: Gate, rdb) -> None:
    cid = _coupon(gate, 5)
    _reserve(gate, [(cid, u) for u in ("a", "b", "c")])
    before = rdb.hgetall(keys.meta(cid))
    meta = gate.read_meta(cid)
    assert meta is not None
    result = gate.update_meta(cid, GateMeta(2, meta.starts_ms, meta.ends_ms, "DISABLED"))
    assert (result.outcome, result.reserved) == (MetaUpdate.BELOW_RESERVED, 3)
    assert rdb.hgetall(keys.meta(cid)) == before
    assert gate.update_meta(cid, GateMeta(3, meta.starts_ms, meta.ends_ms, "ACTIVE")).outcome is MetaUpdate.WRITTEN
    # Without the guard (the undo of a failed change) the DB's values go back whatever the counter says.
    forced = gate.update_meta(cid, GateMeta(1, meta.starts_ms, meta.ends_ms, "ACTIVE"), guard=False)
    assert forced.outcome is MetaUpdate.WRITTEN and rdb.hget(keys.meta(cid), "total") == "1"


def test_update_meta_leaves_a_missing_meta_missing(gate: Gate, rdb) -> None:
    cid = str(uuid.uuid4())
    result = gate.update_meta(cid, GateMeta(5, 0, 1, "ACTIVE"))
    assert result.outcome is MetaUpdate.MISSING and not rdb.exists(keys.meta(cid))
    assert gate.read_meta(cid) is None


def test_update_meta_reloads_a_lost_script(gate: Gate, gate_client: Any) -> None:
    cid = _coupon(gate, 5)
    gate_client.script_flush()
    assert gate.update_meta(cid, GateMeta(6, 0, 2**41, "ACTIVE")).outcome is MetaUpdate.WRITTEN


def test_reserved_many_reads_every_coupon_in_one_pipeline(gate: Gate, rdb, redis_mode: str) -> None:
    coupons = _coupons_on_distinct_slots(gate, rdb, redis_mode, [5, 5, 5])
    _reserve(gate, [(coupons[0], "a"), (coupons[0], "b"), (coupons[2], "a")])
    gone = str(uuid.uuid4())
    assert gate.reserved_many([*coupons, gone]) == [2, 0, 1, None]
    assert gate.reserved_many([]) == []
