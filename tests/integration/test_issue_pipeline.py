"""The issue pipeline end to end: real gunicorn, Redis gate, Kafka, consumer process and MariaDB."""

from __future__ import annotations

import re
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from kafka import KafkaConsumer, TopicPartition
from kafka.structs import OffsetAndMetadata

from coupon.adapters import keys
from harness.client import Api, burst
from harness.invariants import check_invariants, issued_rows, q, wait_drained
from harness.processes import Stack, api_and_consumer, wait_for
from harness.services import services
from tests.integration.conftest import KAFKA


def _issue_all(api: Api, coupon_id: str, tokens: list[str]) -> list[list]:
    return burst(api.base, [("POST", f"/api/coupon/{coupon_id}/issue", t) for t in tokens])


def _accepted(results: list[list], users: list[str]) -> list[str]:
    return [u for u, r in zip(users, results) if r[0] == 202]


BOTH_REDIS = pytest.mark.parametrize("redis_mode", ["standalone", "cluster"], indirect=True)


@BOTH_REDIS
def test_one_user_300_concurrent_requests_gets_exactly_one(api: Api, admin_token, mint, engine, rdb) -> None:
    coupon = api.create_coupon(admin_token, 100)
    [(user_id, token)] = mint(1)
    results = _issue_all(api, coupon["id"], [token] * 300)
    statuses = Counter((r[0], r[1]) for r in results)
    assert statuses == {(202, None): 1, (409, "E3002"): 299}, statuses
    wait_drained(engine, coupon["id"], 1)
    assert issued_rows(engine, coupon["id"]) == 1
    check_invariants(engine, rdb, coupon["id"], [user_id])


@pytest.mark.slow
@BOTH_REDIS
def test_quantity_500_for_3000_users_issues_exactly_500(api: Api, admin_token, mint, engine, rdb) -> None:
    coupon = api.create_coupon(admin_token, 500)
    users = mint(3000)
    results = _issue_all(api, coupon["id"], [t for _, t in users])
    statuses = Counter((r[0], r[1]) for r in results)
    assert statuses == {(202, None): 500, (409, "E3003"): 2500}, statuses
    winners = _accepted(results, [u for u, _ in users])
    ranks = sorted(r[2]["rank"] for r in results if r[0] == 202)
    assert ranks == list(range(1, 501))
    wait_drained(engine, coupon["id"], 500)
    owners = {r.user_id for r in q(engine, "SELECT user_id FROM issued_coupons WHERE coupon_id = :c", c=coupon["id"])}
    assert owners == set(winners) and len(owners) == 500
    counts = check_invariants(engine, rdb, coupon["id"], winners)
    assert counts["issued"] == 500 and int(rdb.get(keys.issued(coupon["id"]))) == 500
    detail = api.call("GET", f"/api/coupon/{coupon['id']}", users[0][1]).json()["data"]["stock"]
    assert detail == {"total": 500, "reserved": 500, "issued": 500, "remaining": 0}


@pytest.mark.slow
def test_status_moves_from_pending_to_issued(pipeline_env, tmp_path, admin_token, mint, engine) -> None:
    stack = Stack(pipeline_env, tmp_path)
    try:
        api = Api(stack.start_api())  # no consumer yet: the request must stay PENDING
        coupon = api.create_coupon(admin_token, 5)
        [(user_id, token)] = mint(1)
        path = f"/api/coupon/{coupon['id']}/issue"
        assert api.call("GET", path, token).json()["data"]["status"] == "NONE"
        accepted = api.call("POST", path, token)
        assert accepted.status_code == 202
        data = accepted.json()["data"]
        assert data["status"] == "PENDING" and data["rank"] == 1 and data["userId"] == user_id
        assert api.call("GET", path, token).json()["data"]["status"] == "PENDING"
        stack.start_consumer()
        wait_for(lambda: api.call("GET", path, token).json()["data"]["status"] == "ISSUED", 60, "status ISSUED")
        owned = api.call("GET", "/api/coupon/owned-coupons", token).json()["data"]
        assert [o["couponId"] for o in owned] == [coupon["id"]] and owned[0]["used"] is False
    finally:
        stack.stop()


def _duplicates_seen(log: str) -> int:
    """Sum of the 'N duplicates' counts in a consumer's batch log lines."""
    return sum(int(m) for m in re.findall(r"(\d+) duplicates,", log))


@pytest.mark.slow
def test_redelivered_messages_do_not_double_issue(stack: Stack, api: Api, admin_token, mint, engine, rdb) -> None:
    coupon = api.create_coupon(admin_token, 50)
    users = mint(80)
    results = _issue_all(api, coupon["id"], [t for _, t in users])
    winners = _accepted(results, [u for u, _ in users])
    wait_drained(engine, coupon["id"], 50)
    # Stop the consumer, rewind the group to the start of the topic, and consume everything again.
    for proc in stack.procs:
        if proc.name == "consumer":
            proc.stop()
    topic, group = stack.env["KAFKA_ISSUE_TOPIC"], stack.env["KAFKA_CONSUMER_GROUP"]
    rewinder = KafkaConsumer(bootstrap_servers=KAFKA, group_id=group, enable_auto_commit=False)
    parts = [TopicPartition(topic, p) for p in rewinder.partitions_for_topic(topic)]
    rewinder.assign(parts)
    rewinder.commit({tp: OffsetAndMetadata(0, "", -1) for tp in parts})
    rewinder.close()
    again = stack.start_consumer()
    wait_for(lambda: _duplicates_seen(again.log()) >= 50, 60, "the redelivered messages to be processed")
    assert issued_rows(engine, coupon["id"]) == 50
    check_invariants(engine, rdb, coupon["id"], winners)


@pytest.mark.slow
def test_consumer_sigkill_mid_sale_loses_and_doubles_nothing(
    pipeline_env: dict[str, str], tmp_path, admin_token, mint, engine, rdb, fault_report
) -> None:
    # Transactions of 50 rows: one API worker can batch a whole sale into a few records, and with the default chunk
    # of 2,000 rows the first commit could be the last, leaving nothing "mid-sale" to kill.
    stack = Stack(dict(pipeline_env, CONSUMER_CHUNK_EVENTS="50"), tmp_path)
    try:
        _sigkill_mid_sale(stack, admin_token, mint, engine, rdb, fault_report)
    finally:
        stack.stop()


def _sigkill_mid_sale(stack: Stack, admin_token, mint, engine, rdb, fault_report) -> None:
    api = Api(stack.start_api_and_consumer())
    coupon = api.create_coupon(admin_token, 1000)
    users = mint(1500)
    first = stack.procs[-1]
    with ThreadPoolExecutor(max_workers=1) as pool:
        sale = pool.submit(_issue_all, api, coupon["id"], [t for _, t in users])
        # SIGKILL while the sale is still being persisted: persisted-but-uncommitted batches get redelivered.
        # As soon as the first rows land: the consumer persists ~15,000 rows/s, so waiting for 100 could miss the sale.
        wait_for(lambda: issued_rows(engine, coupon["id"]) >= 1, 60, "the consumer to be mid-sale", interval=0.005)
        first.kill()
        killed_at = time.monotonic()
        persisted_before = issued_rows(engine, coupon["id"])
        results = sale.result()
    assert persisted_before < 1000, "the consumer was not killed mid-sale"
    winners = _accepted(results, [u for u, _ in users])
    assert len(winners) == 1000
    stack.start_consumer()
    wait_drained(engine, coupon["id"], 1000)
    check_invariants(engine, rdb, coupon["id"], winners)
    fault_report.append(
        {
            "case": f"1 consumer SIGKILL at {persisted_before} rows",
            "sent": 1500,
            "accepted": len(winners),
            "issued": issued_rows(engine, coupon["id"]),
            "rejected": 0,
            "recovery_s": round(time.monotonic() - killed_at, 1),
        }
    )


@pytest.mark.parametrize("redis_mode", ["cluster"], indirect=True)
def test_a_wiped_cluster_refuses_until_what_was_in_flight_is_counted_then_sells_the_rest_exactly(
    pipeline_env, tmp_path, admin_token, mint, engine, rdb
) -> None:
    """Every master flushed mid-sale (the standalone cases are tests/integration/test_redis_loss.py): 503 E5031 with
    Retry-After while the in-flight bound runs (3 s with a 1 s delivery timeout), then the rebuilt gate counts
    every earlier holder, and the newcomers get exactly the rest."""
    env = dict(pipeline_env, KAFKA_DELIVERY_TIMEOUT_MS="1000", GATE_REBUILD_WAIT_MS="")  # the bound: 1 + 1 + 1 s
    with api_and_consumer(env, tmp_path) as stack:
        api = Api(stack.base_url)
        coupon = api.create_coupon(admin_token, 200)
        users = mint(600)
        tokens, ids = [t for _, t in users], [u for u, _ in users]
        accepted = set(_accepted(_issue_all(api, coupon["id"], tokens[:150]), ids[:150]))
        assert len(accepted) == 150
        rdb.flushdb(target_nodes=rdb.PRIMARIES)
        refused = api.call("POST", f"/api/coupon/{coupon['id']}/issue", tokens[150])
        assert (refused.status_code, refused.json()["errorMessage"]["code"]) == (503, "E5031"), refused.text
        assert 1 <= int(refused.headers["Retry-After"]) <= 4, refused.headers
        answers = dict.fromkeys(ids, (0, None))
        deadline = time.monotonic() + 30
        while waiting := [i for i, u in enumerate(ids) if answers[u][0] in (0, 503)]:
            assert time.monotonic() < deadline, Counter(answers.values())
            for i, r in zip(waiting, _issue_all(api, coupon["id"], [tokens[i] for i in waiting])):
                answers[ids[i]] = (r[0], r[1])
                assert (r[0], r[1]) in {(202, None), (409, "E3002"), (409, "E3003"), (503, "E5031")}, r
            time.sleep(0.5)
        accepted |= {u for u, (status, _) in answers.items() if status == 202}
        assert {answers[u][1] for u in ids[:150]} == {"E3002"}, "an earlier holder was admitted again"
        wait_for(lambda: issued_rows(engine, coupon["id"]) == 200, 120, "all 200 coupons to be issued")
        wait_drained(engine, coupon["id"], len(accepted))
        counts = check_invariants(engine, rdb, coupon["id"], accepted)
        assert counts["issued"] == 200 and len(accepted) == 200


@pytest.mark.slow
def test_kafka_down_answers_503_and_leaks_no_reservation(
    api: Api, admin_token, mint, engine, rdb, fault_report
) -> None:
    coupon = api.create_coupon(admin_token, 50)
    users = mint(90)
    tokens, ids = [t for _, t in users], [u for u, _ in users]
    before = _issue_all(api, coupon["id"], tokens[:20])
    accepted = _accepted(before, ids[:20])
    assert len(accepted) == 20
    services("stop", "kafka")
    try:
        during = _issue_all(api, coupon["id"], tokens[20:40])
        assert Counter((r[0], r[1]) for r in during) == {(503, "E5032"): 20}
        assert int(rdb.get(keys.issued(coupon["id"]))) == 20, "a failed publish leaked a reservation"
        assert rdb.zcard(keys.participants(coupon["id"])) == 20
        ready = api.call("GET", "/health/ready")
        assert ready.status_code == 503 and ready.json()["data"]["checks"]["kafka"]["status"] == "DOWN"
    finally:
        restarted_at = time.monotonic()
        services("start", "kafka")
    # The 503'd users and newcomers can still get all of the remaining 30.
    wait_for(lambda: api.call("GET", "/health/ready").status_code == 200, 60, "Kafka to be back")
    recovery = time.monotonic() - restarted_at
    after = _issue_all(api, coupon["id"], tokens[20:])
    late = _accepted(after, ids[20:])
    assert len(late) == 30 and Counter(r[1] for r in after if r[0] != 202) == {"E3003": 40}
    accepted += late
    wait_drained(engine, coupon["id"], 50, timeout=180)
    counts = check_invariants(engine, rdb, coupon["id"], accepted)
    assert counts["issued"] == 50
    fault_report.append(
        {
            "case": "2 Kafka stopped (20 × 503 during it)",
            "sent": 90,
            "accepted": len(accepted),
            "issued": counts["issued"],
            "rejected": 0,
            "recovery_s": round(recovery, 1),
        }
    )
