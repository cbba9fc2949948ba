"""Slow faults: a dependency frozen (SIGSTOP) and resumed (SIGCONT) during a live sale, the late-record fence,
idempotent retries and the sweeper. Every case ends with the design's invariants checked on the real DB and Redis."""

from __future__ import annotations

import os
import signal
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import pytest
from kafka import KafkaProducer

from coupon.adapters import keys
from coupon.adapters.gate import Gate, GateRequest
from coupon.adapters.redis_client import build_redis
from coupon.domain.events import IssueEvent
from harness.client import Api, burst
from harness.invariants import check_invariants, issued_rows, q, wait_drained
from harness.processes import Stack, api_and_consumer, wait_for
from harness.services import pid_file
from tests.support.cli import flask_cli

# Fault injection and end-to-end runs: `make test` runs them, `make check` leaves them out.
pytestmark = pytest.mark.slow

# Short bounds so a case settles in seconds: the producer gives up after 3 s, the sweeper takes anything older
# than 2 s once the consumers have drained.
STALL_ENV = {
    "KAFKA_DELIVERY_TIMEOUT_MS": "3000",
    "ISSUE_QUEUE_TIMEOUT_MS": "0",  # the default again: it follows the delivery timeout
    "SETTLE_AFTER_SECONDS": "2",
    "SETTLE_LAG_WAIT_SECONDS": "20",
}
STALLS = [("kafka", 9.0), ("redis", 4.0), ("mariadb", 10.0)]
NOT_RESERVED = {"E5031", "E5032", "E5036"}  # "nothing was reserved": that request must never become a coupon


def service_pid(name: str) -> int:
    """The pid of the service this checkout's scripts/services.sh started (the one the tests talk to)."""
    path = pid_file(name)
    assert path.exists(), (
        f"{path} is missing: the stall tests freeze the services that scripts/services.sh started;"
        " run them through `make test`, which starts them"
    )
    return int(path.read_text().strip())


@contextmanager
def frozen(name: str) -> Iterator[None]:
    pid = service_pid(name)
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


def _issue_requests(coupon_id: str, users: list[tuple[str, str]], idem: dict[str, str]) -> list[tuple[Any, ...]]:
    return [("POST", f"/api/coupon/{coupon_id}/issue", t, None, {"Idempotency-Key": idem[u]}) for u, t in users]


def _first_accepted_after(
    api: Api, coupon_id: str, fresh: list[tuple[str, str]], since: float, limit: float
) -> tuple[float, str]:
    """Seconds from `since` until a user who never asked before is accepted (each attempt uses a new user)."""
    for user_id, token in fresh:
        resp = api.call("POST", f"/api/coupon/{coupon_id}/issue", token)
        if resp.status_code == 202:
            return time.monotonic() - since, user_id
        assert time.monotonic() - since < limit, f"no fresh user accepted {limit}s after the stall: {resp.text}"
        assert resp.status_code == 503, resp.text
        time.sleep(0.2)
    raise AssertionError("ran out of fresh users before one was accepted")


@pytest.fixture
def stall_stack(pipeline_env: dict[str, str], tmp_path: Any) -> Iterator[tuple[Stack, Api]]:
    with api_and_consumer(dict(pipeline_env, **STALL_ENV), tmp_path) as stack:
        yield stack, Api(stack.base_url)


@pytest.mark.slow
@pytest.mark.parametrize("when", ["during", "before"])
@pytest.mark.parametrize(("service", "seconds"), STALLS, ids=[s for s, _ in STALLS])
def test_a_stalled_dependency_never_turns_a_503_into_a_coupon_nor_locks_anyone_out(
    service: str,
    seconds: float,
    when: str,
    stall_stack: tuple[Stack, Api],
    engine,
    rdb,
    admin_token,
    mint,
    fault_report,
) -> None:
    stack, api = stall_stack
    coupon = api.create_coupon(admin_token, 200)
    cid = coupon["id"]
    probe = api.create_coupon(admin_token, 100)["id"]  # recovery is timed on a coupon that can't sell out
    users, fresh = mint(500), mint(40)
    idem = {u: uuid.uuid4().hex for u, _ in users}
    answers: dict[str, list[tuple[int, Any]]] = {u: [] for u, _ in users}

    def fire(group: list[tuple[str, str]]) -> None:
        for (u, _), r in zip(group, burst(api.base, _issue_requests(cid, group, idem))):
            answers[u].append((r[0], r[1]))

    if when == "during":
        fire(users[:100])  # the sale is running: half the stock is gone when the service freezes
    late = users[100:] if when == "during" else users
    with ThreadPoolExecutor(1) as pool:
        with frozen(service):
            frozen_at = time.monotonic()
            wave = pool.submit(fire, late)
            time.sleep(max(seconds - (time.monotonic() - frozen_at), 0))  # the stall itself is what is under test
        resumed_at = time.monotonic()
        recovery, fresh_user = _first_accepted_after(api, probe, fresh, resumed_at, limit=10)
        # Readiness follows: every worker's producer publishes again (DOWN lasts while publishes fail).
        wait_for(lambda: api.call("GET", "/health/ready").status_code == 200, 20, "/health/ready to be UP again")
        wave.result(timeout=120)

    first = Counter(a[0] for a in answers.values() if a)
    unconfirmed = [u for u, a in answers.items() if a[0][1] == "E5034"]
    # Those told "nothing reserved" retry; of those told "not confirmed", half retry with the same Idempotency-Key
    # (as the E5034 message says) and half only wait for the outcome (the sweeper settles theirs).
    waiting = set(unconfirmed[1::2])
    retrying = [
        (u, t) for u, t in users if answers[u][0][0] != 202 and answers[u][0][1] != "E3003" and u not in waiting
    ]
    fire(retrying)
    told_duplicate = [u for u, a in answers.items() if any(code == "E3002" for _, code in a)]
    assert not told_duplicate, f"{len(told_duplicate)} users told 'duplicate' after a 503, e.g. {told_duplicate[:3]}"

    accepted = {u for u, a in answers.items() if any(status == 202 for status, _ in a)}
    wait_for(lambda: not _in_flight(rdb, engine, cid), 120, "every confirmed reservation to reach the DB", interval=0.2)
    repair = flask_cli(stack.env, "reconcile", cid, "--repair", "--older-than", "0")
    settled = {o: repair.stdout.count(f": {o}\n") for o in ("issued", "fenced", "failure-record", "rejected")}
    assert repair.returncode == 0, repair.stdout + repair.stderr
    assert rdb.zcard(keys.unconfirmed(cid)) == 0, "someone is still PENDING after the sweep"
    tokens = dict(users)
    statuses = Counter(api.call("GET", f"/api/coupon/{cid}/issue", tokens[u]).json()["data"]["status"] for u in waiting)
    assert set(statuses) <= {"ISSUED", "NONE"}, statuses

    owners = {r.user_id for r in q(engine, "SELECT user_id FROM issued_coupons WHERE coupon_id = :c", c=cid)}
    refused = {
        u
        for u, a in answers.items()
        if a and all(code in NOT_RESERVED for _, code in a if code) and not any(status == 202 for status, _ in a)
    }
    assert not (owners & refused), f"{len(owners & refused)} users told 'nothing reserved' own the coupon"
    check_invariants(engine, rdb, cid, accepted | set(unconfirmed))
    wait_drained(engine, probe, 1)
    check_invariants(engine, rdb, probe, [fresh_user])
    assert accepted <= owners, "a 202 did not become a coupon"
    fault_report.append(
        {
            "case": f"7 {service} frozen {seconds:.0f} s {when} the sale",
            "sent": len(users),
            "accepted": len(accepted),
            "issued": issued_rows(engine, cid),
            "rejected": 0,
            "recovery_s": round(recovery, 1),
            "unconfirmed": len(unconfirmed),
            "settled": {o: n for o, n in settled.items() if n},
            "first": {f"{status} {code or ''}".strip(): n for (status, code), n in first.items()},
        }
    )


def _in_flight(rdb: Any, engine: Any, coupon_id: str) -> bool:
    """True while a confirmed Redis reservation has no DB row yet (the consumer is still catching up)."""
    holders = set(rdb.zrange(keys.participants(coupon_id), 0, -1)) - set(rdb.zrange(keys.unconfirmed(coupon_id), 0, -1))
    rows = {r.user_id for r in q(engine, "SELECT user_id FROM issued_coupons WHERE coupon_id = :c", c=coupon_id)}
    return bool(holders - rows)


def test_a_record_released_by_the_sweeper_that_arrives_later_never_becomes_a_coupon(
    stack: Stack,
    engine,
    rdb,
    admin_token,
    mint,
) -> None:
    api = Api(stack.base_url)
    coupon = api.create_coupon(admin_token, 1)
    cid = coupon["id"]
    (late_user, late_token), (other, other_token) = mint(2)
    gate = Gate(build_redis(stack.env["REDIS_URL"]))
    # An API worker reserved and sent the record, then lost track of it (a stall; the caller was told E5034).
    event = IssueEvent(uuid.uuid4().hex, cid, late_user, 1, "2026-12-01T00:00:00.000Z")
    [decision] = gate.reserve_many([GateRequest(cid, late_user, event.event_id, event.event_id)])
    assert decision.rank == 1
    status = api.call("GET", f"/api/coupon/{cid}/issue", late_token).json()["data"]["status"]
    assert status == "PENDING"
    assert api.call("POST", f"/api/coupon/{cid}/issue", other_token).json()["errorMessage"]["code"] == "E3003"
    report = flask_cli(stack.env, "reconcile", cid)
    assert report.returncode == 1 and f"redis-only {late_user} hold=P" in report.stderr, report.stdout + report.stderr
    repair = flask_cli(stack.env, "reconcile", cid, "--repair", "--older-than", "0")
    assert repair.returncode == 0 and f"settled {cid} {late_user} {event.event_id}: fenced" in repair.stdout, (
        repair.stdout + repair.stderr
    )
    assert api.call("GET", f"/api/coupon/{cid}/issue", late_token).json()["data"]["status"] == "NONE"
    # The stalled broker finally appends the record, after the release.
    producer = KafkaProducer(bootstrap_servers=stack.env["KAFKA_BOOTSTRAP_SERVERS"].split(","), acks="all")
    producer.send(stack.env["KAFKA_ISSUE_TOPIC"], key=late_user.encode(), value=event.to_bytes()).get(timeout=30)
    producer.close()
    consumer = stack.procs[-1]
    wait_for(
        lambda: "skipped 1 records of cancelled reservations" in consumer.log(),
        60,
        "the consumer to skip the cancelled record",
    )
    # The unit is back on sale and goes to someone who asks now.
    resp = api.call("POST", f"/api/coupon/{cid}/issue", other_token)
    assert resp.status_code == 202, resp.text
    wait_drained(engine, cid, 1)
    assert [r.user_id for r in q(engine, "SELECT user_id FROM issued_coupons WHERE coupon_id = :c", c=cid)] == [other]
    check_invariants(engine, rdb, cid, [other])


def test_idempotency_key_same_key_same_answer_other_key_duplicate(server: Api, admin_token, mint, rdb) -> None:
    coupon = server.create_coupon(admin_token, 5)
    path = f"/api/coupon/{coupon['id']}/issue"
    [(_user, token)] = mint(1)
    first = server.call("POST", path, token, headers={"Idempotency-Key": "order-1"})
    again = server.call("POST", path, token, headers={"Idempotency-Key": "order-1"})
    other = server.call("POST", path, token, headers={"Idempotency-Key": "order-2"})
    assert first.status_code == 202 and again.status_code == 202, (first.text, again.text)
    assert again.json()["data"]["rank"] == first.json()["data"]["rank"]
    assert other.status_code == 409 and other.json()["errorMessage"]["code"] == "E3002"
    assert int(rdb.get(keys.issued(coupon["id"]))) == 1
    bad = server.call("POST", path, token, headers={"Idempotency-Key": "has spaces|pipes"})
    assert bad.status_code == 400 and bad.json()["errorMessage"]["code"] == "E4007"
