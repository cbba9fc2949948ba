"""Coupon usage (exactly once, owner only, before expiry) and undecodable messages parked in the DLQ."""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from kafka import KafkaConsumer, KafkaProducer

from coupon.domain.events import IssueEvent
from harness.client import Api
from harness.invariants import check_invariants, q, scalar, wait_drained
from harness.processes import Stack, wait_for
from tests.integration.conftest import KAFKA


def _issued(api: Api, engine, admin_token: str, mint, quantity: int = 5, users: int = 2):
    coupon = api.create_coupon(admin_token, quantity)
    people = mint(users)
    for _, token in people:
        assert api.call("POST", f"/api/coupon/{coupon['id']}/issue", token).status_code == 202
    wait_drained(engine, coupon["id"], users)
    return coupon, people


def test_concurrent_double_use_exactly_one_succeeds(api: Api, engine, admin_token, mint) -> None:
    coupon, [(user_id, token), _] = _issued(api, engine, admin_token, mint)
    path = f"/api/coupon/{coupon['id']}/usage"

    def use(_: int):
        resp = Api(api.base).call("POST", path, token)
        return resp.status_code, (resp.json()["errorMessage"] or {}).get("code")

    with ThreadPoolExecutor(max_workers=30) as pool:
        outcomes = Counter(pool.map(use, range(30)))
    assert outcomes == {(200, None): 1, (409, "E3008"): 29}, outcomes
    row = q(
        engine,
        "SELECT used, used_at FROM issued_coupons WHERE coupon_id = :c AND user_id = :u",
        c=coupon["id"],
        u=user_id,
    )[0]
    assert row.used == 1 and row.used_at is not None
    owned = api.call("GET", "/api/coupon/owned-coupons", token).json()["data"]
    assert owned[0]["used"] is True and owned[0]["usedAt"]


def test_usage_by_a_non_owner_is_404(api: Api, engine, admin_token, mint) -> None:
    coupon, _ = _issued(api, engine, admin_token, mint, users=1)
    [(_, stranger)] = mint(1)
    resp = api.call("POST", f"/api/coupon/{coupon['id']}/usage", stranger)
    assert resp.status_code == 404 and resp.json()["errorMessage"]["code"] == "E3007"


def test_usage_after_expiry_is_409(api: Api, engine, admin_token, mint) -> None:
    coupon, [(user_id, token), _] = _issued(api, engine, admin_token, mint)
    with engine.begin() as conn:  # time passes: the coupon expires
        conn.exec_driver_sql(
            "UPDATE coupons SET expires_at = NOW(6) - INTERVAL 1 MINUTE WHERE id = %s", (coupon["id"],)
        )
    resp = api.call("POST", f"/api/coupon/{coupon['id']}/usage", token)
    assert resp.status_code == 409 and resp.json()["errorMessage"]["code"] == "E3009"
    assert scalar(engine, "SELECT used FROM issued_coupons WHERE user_id = :u", u=user_id) == 0


def test_issue_of_expired_or_future_coupon_is_409(api: Api, admin_token, mint) -> None:
    from harness.client import iso_in

    [(_, token)] = mint(1)
    future = api.create_coupon(admin_token, 5, issueStartsAt=iso_in(hours=1), expiresAt=iso_in(hours=2))
    resp = api.call("POST", f"/api/coupon/{future['id']}/issue", token)
    assert resp.status_code == 409 and resp.json()["errorMessage"]["code"] == "E3004"
    resp = api.call("POST", "/api/coupon/00000000-0000-4000-8000-000000000000/issue", token)
    assert resp.status_code == 404 and resp.json()["errorMessage"]["code"] == "E3001"


def test_undecodable_message_goes_to_dlq_and_consumer_keeps_going(
    stack: Stack, api: Api, engine, rdb, admin_token, mint, fault_report
) -> None:
    topic, dlq = stack.env["KAFKA_ISSUE_TOPIC"], stack.env["KAFKA_DLQ_TOPIC"]
    producer = KafkaProducer(bootstrap_servers=KAFKA, acks="all")
    poison = [b"{not json", b'{"coupon_id": "x"}', b"\xff\xfe"]
    for value in poison:
        producer.send(topic, key=b"poison", value=value).get(timeout=10)
    producer.close()
    coupon, people = _issued(api, engine, admin_token, mint, users=3)
    check_invariants(engine, rdb, coupon["id"], [u for u, _ in people])
    reader = KafkaConsumer(dlq, bootstrap_servers=KAFKA, auto_offset_reset="earliest", consumer_timeout_ms=1000)
    parked: list = []
    wait_for(lambda: parked.extend(reader) or len(parked) >= 3, 30, "3 records in the DLQ")
    reader.close()
    assert sorted(r.value for r in parked) == sorted(poison)
    assert all(dict(r.headers).get("error") for r in parked)
    fault_report.append(
        {
            "case": "7 undecodable records (3) → DLQ",
            "sent": 3,
            "accepted": 3,
            "issued": scalar(engine, "SELECT COUNT(*) FROM issued_coupons"),
            "rejected": 0,
            "recovery_s": 0.0,
        }
    )


@pytest.mark.slow
def test_event_schema_round_trips_through_kafka(pipeline_env) -> None:
    """What the API writes is what the consumer reads: the real codec over the real broker."""
    from coupon.domain.events import decode

    event = IssueEvent("e1", "00000000-0000-4000-8000-000000000001", "00000000-0000-4000-8000-000000000002", 7, "t")
    producer = KafkaProducer(bootstrap_servers=KAFKA, acks="all")
    producer.send(pipeline_env["KAFKA_ISSUE_TOPIC"], key=b"k", value=event.to_bytes()).get(timeout=10)
    producer.close()
    reader = KafkaConsumer(
        pipeline_env["KAFKA_ISSUE_TOPIC"],
        bootstrap_servers=KAFKA,
        auto_offset_reset="earliest",
        consumer_timeout_ms=5000,
    )
    got = [decode(r.value) for r in reader]
    reader.close()
    assert got == [event]
