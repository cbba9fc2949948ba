"""Scale-out shapes on loopback: three consumers in one group losing one to SIGKILL mid-sale, and two
gunicorn instances serving one sale. Exact counts and the invariants must hold in each."""

from __future__ import annotations

import re
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from kafka import KafkaConsumer

from harness.client import Api, burst
from harness.invariants import check_invariants, issued_rows, q, wait_drained
from harness.processes import Proc, Stack, wait_for
from tests.integration.conftest import KAFKA

# Fault injection and end-to-end runs: `make test` runs them, `make check` leaves them out.
pytestmark = pytest.mark.slow


def _assignment(proc: Proc) -> set[int] | None:
    """The partitions a consumer holds now (its last 'partitions assigned' log line), None before the first."""
    found = re.findall(r"partitions assigned: \[([0-9, ]*)\]", proc.log())
    if not found:
        return None
    return {int(p) for p in found[-1].split(",") if p.strip()}


def _revoked_since_assigned(proc: Proc) -> bool:
    log = proc.log()
    return log.rfind("partitions revoked") > log.rfind("partitions assigned")


def _balanced(procs: list[Proc], partitions: int) -> bool:
    """Every consumer holds some partitions, none twice, together all of them."""
    held = [_assignment(p) for p in procs]
    if any(not h or _revoked_since_assigned(p) for h, p in zip(held, procs)):
        return False
    flat = [x for h in held for x in h]  # type: ignore[union-attr]
    return len(flat) == len(set(flat)) == partitions


def _partitions(topic: str) -> int:
    probe = KafkaConsumer(bootstrap_servers=KAFKA)
    try:
        return len(probe.partitions_for_topic(topic) or ())
    finally:
        probe.close()


# Standalone Redis only: the consumers' group and their rows are what this tests, and the gate on a cluster is proven by
# the two-instance case below and test_issue_pipeline's seed scenario (a cluster run of this one cost ~37 s of CI).
def test_three_consumers_lose_one_to_sigkill_mid_sale_counts_stay_exact(
    pipeline_env, tmp_path, admin_token, mint, engine, rdb, fault_report
) -> None:
    partitions = _partitions(pipeline_env["KAFKA_ISSUE_TOPIC"])
    assert partitions >= 6
    # Transactions of 50 rows, as in test_consumer_sigkill_mid_sale_loses_and_doubles_nothing: with the default chunk
    # of 2,000 each consumer can persist its whole share in one commit, so the rows went from 0 to 1,500 before the
    # kill (a fresh-clone run: "the consumer was not killed mid-sale").
    stack = Stack(dict(pipeline_env, CONSUMER_CHUNK_EVENTS="50"), tmp_path)
    try:
        api = Api(stack.start_api())
        consumers = [stack.start_consumer(wait_assigned=False) for _ in range(3)]
        wait_for(lambda: _balanced(consumers, partitions), 90, "three consumers to share the partitions")
        coupon = api.create_coupon(admin_token, 1500)
        users = mint(2500)
        with ThreadPoolExecutor(max_workers=1) as pool:
            sale = pool.submit(burst, api.base, [("POST", f"/api/coupon/{coupon['id']}/issue", t) for _, t in users])
            # As soon as rows land: three consumers persist far faster than 150 rows per poll interval.
            wait_for(lambda: issued_rows(engine, coupon["id"]) >= 1, 60, "the consumers to be mid-sale", interval=0.005)
            victim = consumers[0]
            lost = _assignment(victim)
            victim.kill()  # SIGKILL: no revoke, no commit; its partitions move after the session timeout
            killed_at = time.monotonic()
            persisted_before = issued_rows(engine, coupon["id"])
            results = sale.result()
        assert persisted_before < 1500, "the consumer was not killed mid-sale"
        statuses = Counter((r[0], r[1]) for r in results)
        assert statuses == {(202, None): 1500, (409, "E3003"): 1000}, statuses
        winners = [u for (u, _), r in zip(users, results) if r[0] == 202]
        survivors = consumers[1:]
        wait_for(lambda: _balanced(survivors, partitions), 90, "the two survivors to take over every partition")
        assert lost and lost <= set().union(*(_assignment(p) or set() for p in survivors))
        wait_drained(engine, coupon["id"], 1500)
        owners = {
            r.user_id for r in q(engine, "SELECT user_id FROM issued_coupons WHERE coupon_id = :c", c=coupon["id"])
        }
        assert owners == set(winners)
        counts = check_invariants(engine, rdb, coupon["id"], winners)
        assert counts["issued"] == 1500 and counts["pending"] == 0
        fault_report.append(
            {
                "case": f"3 consumers, 1 SIGKILLed at {persisted_before} rows",
                "sent": 2500,
                "accepted": len(winners),
                "issued": counts["issued"],
                "rejected": counts["rejected"],
                "recovery_s": round(time.monotonic() - killed_at, 1),
            }
        )
    finally:
        stack.stop()


def _issue_outcomes(base: str) -> Counter:
    text = requests.get(base + "/metrics", timeout=5).text
    return Counter(
        {
            m[0]: float(m[1])
            for m in re.findall(r'^coupon_issue_requests_total\{outcome="([a-z_]+)"\} ([0-9.e+]+)$', text, re.M)
        }
    )


# On Redis Cluster only: the instances share the gate either way, and the cluster is the shape that scales out (the
# standalone gate's sale of this size: test_issue_pipeline's seed scenario). The standalone run cost ~21 s of CI.
@pytest.mark.parametrize("redis_mode", ["cluster"], indirect=True)
def test_two_gunicorn_instances_serve_one_sale_exactly(pipeline_env, tmp_path, admin_token, mint, engine, rdb) -> None:
    stack = Stack(pipeline_env, tmp_path)
    try:
        bases = [stack.start_api(workers=2), stack.start_api(workers=2)]
        assert bases[0] != bases[1]
        for base in bases:  # readiness pings the gate's Redis (every cluster node in cluster mode)
            ready = requests.get(base + "/health/ready", timeout=10)
            assert ready.status_code == 200 and ready.json()["data"]["checks"]["redis"]["status"] == "UP", ready.text
        stack.start_consumer()
        api = Api(bases[0])
        coupon = api.create_coupon(admin_token, 500)
        users = mint(3000)
        path = f"/api/coupon/{coupon['id']}/issue"
        # Clients alternate between the two instances; all requests go out at once.
        results = burst(bases[0], [("POST", path, t, bases[i % 2]) for i, (_, t) in enumerate(users)])
        statuses = Counter((r[0], r[1]) for r in results)
        assert statuses == {(202, None): 500, (409, "E3003"): 2500}, statuses
        ranks = sorted(r[2]["rank"] for r in results if r[0] == 202)
        assert ranks == list(range(1, 501)), "ranks are not one global sequence over both instances"
        for base in bases:  # each instance really decided its half
            seen = _issue_outcomes(base)
            assert seen["accepted"] + seen["sold_out"] == 1500, (base, seen)
        assert sum(_issue_outcomes(b)["accepted"] for b in bases) == 500
        winners = [u for (u, _), r in zip(users, results) if r[0] == 202]
        wait_drained(engine, coupon["id"], 500)
        owners = {
            r.user_id for r in q(engine, "SELECT user_id FROM issued_coupons WHERE coupon_id = :c", c=coupon["id"])
        }
        assert owners == set(winners)
        counts = check_invariants(engine, rdb, coupon["id"], winners)
        assert counts["issued"] == 500
        detail = Api(bases[1]).call("GET", f"/api/coupon/{coupon['id']}", users[0][1]).json()["data"]["stock"]
        assert detail == {"total": 500, "reserved": 500, "issued": 500, "remaining": 0}
    finally:
        stack.stop()
