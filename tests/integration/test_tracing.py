"""Request ids and JSON logs over real processes: one request followed from HTTP to the consumer's line naming
its DB row (also through a retried failure record), and no token or password in any process's log."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa

from harness.client import Api
from harness.invariants import check_invariants, wait_drained
from harness.processes import ROOT, Stack, wait_for


def _lines(text: str) -> list[dict]:
    """Every line a process logged; each must be a JSON object."""
    out = []
    for line in text.splitlines():
        if line.strip():
            out.append(json.loads(line))  # a non-JSON line fails the test here
    return out


def _logs(stack: Stack, name: str) -> list[dict]:
    return [d for p in stack.procs if p.name == name for d in _lines(p.log())]


def _consumer_events(stack: Stack) -> list[dict]:
    """The events of the consumer's "events persisted" lines, each with its request id and outcome."""
    return [e for d in _logs(stack, "consumer") if d.get("msg") == "events persisted" for e in d["events"]]


def _issue(base: str, coupon_id: str, token: str, request_id: str) -> requests.Response:
    return requests.post(
        f"{base}/api/coupon/{coupon_id}/issue",
        timeout=30,
        headers={"Authorization": f"Bearer {token}", "X-Request-Id": request_id},
    )


def test_request_ids_follow_each_request_from_http_to_its_db_row(
    stack: Stack, api: Api, admin_token, mint, engine, rdb
) -> None:
    coupon = api.create_coupon(admin_token, 30)
    users = mint(40)
    ids = [f"trace-{uuid.uuid4().hex[:12]}" for _ in users]
    # Concurrent requests, so several share one Kafka record: each id must still come out on its own event.
    with ThreadPoolExecutor(max_workers=40) as pool:
        replies = list(pool.map(lambda i: _issue(api.base, coupon["id"], users[i][1], ids[i]), range(len(users))))
    assert all(r.headers["X-Request-Id"] == rid for r, rid in zip(replies, ids))
    accepted = {ids[i]: users[i][0] for i, r in enumerate(replies) if r.status_code == 202}
    assert len(accepted) == 30 and all(r.status_code in (202, 409) for r in replies)
    wait_drained(engine, coupon["id"], 30)
    check_invariants(engine, rdb, coupon["id"], accepted.values())

    def consumer_lines() -> dict[str, dict]:
        return {e["request_id"]: e for e in _consumer_events(stack)}

    seen = wait_for(
        lambda: (lambda found: found if set(accepted) <= set(found) else None)(consumer_lines()),
        30,
        "a consumer log line for every accepted request",
    )
    with engine.connect() as conn:
        for rid, user_id in accepted.items():
            line = seen[rid]
            assert line["result"] == "inserted" and line["user_id"] == user_id and line["coupon_id"] == coupon["id"]
            # The line names the issued_coupons row (its unique key): that row exists.
            row = conn.execute(
                sa.text("SELECT `rank` FROM issued_coupons WHERE coupon_id = :c AND user_id = :u"),
                {"c": coupon["id"], "u": user_id},
            ).one()
            assert row.rank == line["rank"]
    # Sold-out requests never reached Kafka: no consumer line names them.
    assert not set(ids) - set(accepted) & set(seen)


def test_a_header_id_that_is_not_safe_is_replaced_and_errors_carry_an_id_too(server: Api) -> None:
    weird = requests.get(server.base + "/health", headers={"X-Request-Id": "x" * 65}, timeout=5)
    assert weird.status_code == 200 and len(weird.headers["X-Request-Id"]) == 16
    for method, path in (("GET", "/no-such-route"), ("POST", "/api/coupon"), ("DELETE", "/health")):
        resp = requests.request(method, server.base + path, headers={"X-Request-Id": "err-1"}, timeout=5)
        assert resp.status_code >= 400 and resp.headers["X-Request-Id"] == "err-1"
    fresh = {requests.get(server.base + "/health", timeout=5).headers["X-Request-Id"] for _ in range(5)}
    assert len(fresh) == 5


def test_a_retried_failure_record_logs_the_same_request_id(stack: Stack, admin_token, api: Api, mint, engine) -> None:
    """The failure payload keeps the id: the retry (CLI and rq job share the code) and the consumer log it."""
    coupon = api.create_coupon(admin_token, 5)
    ((user_id, _token),) = mint(1)
    rid = f"retry-{uuid.uuid4().hex[:8]}"
    payload = json.dumps(
        {
            "event_id": "e1",
            "coupon_id": coupon["id"],
            "user_id": user_id,
            "rank": 1,
            "requested_at": "2026-11-25T00:00:00.000Z",
            "retry_of": None,
            "request_id": rid,
        }
    )
    with engine.begin() as conn:
        failure_id = conn.execute(
            sa.text(
                "INSERT INTO failed_issued_coupons (coupon_id, user_id, payload, error, retry_count, is_resolved,"
                " status, created_at) VALUES (:c, :u, :p, 'boom', 0, 0, 'PENDING', NOW(6))"
            ),
            {"c": coupon["id"], "u": user_id, "p": payload},
        ).lastrowid
    out = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "wsgi", "failures", "retry", str(failure_id)],
        cwd=ROOT,
        env=stack.env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    retry_lines = [d for d in _lines(out.stderr) if d.get("failure_id") == failure_id]
    assert retry_lines and retry_lines[0]["request_id"] == rid and retry_lines[0]["proc"] == "cli"

    def landed() -> dict | None:
        found = [e for e in _consumer_events(stack) if e["request_id"] == rid]
        return found[0] if found else None

    line = wait_for(landed, 30, "the consumer to log the retried event")
    assert line["retry_of"] == failure_id and line["result"] == "inserted" and line["user_id"] == user_id
    with engine.connect() as conn:
        assert (
            conn.execute(sa.text("SELECT status FROM failed_issued_coupons WHERE id = :i"), {"i": failure_id}).scalar()
            == "RESOLVED"
        )


@pytest.mark.slow
def test_no_token_or_password_in_any_log(pipeline_env, tmp_path: Path, admin_token, engine) -> None:
    """A real run at DEBUG with the access log on: every line is JSON, none holds a secret."""
    env = dict(pipeline_env, LOG_LEVEL="DEBUG", ACCESS_LOG="-", JWT_SECRET_KEY="jwt-secret-for-the-log-test-0123456789")
    stack = Stack(env, tmp_path)
    try:
        api = Api(stack.start_api(workers=1))
        stack.start_consumer()
        password = f"pw-{uuid.uuid4().hex}"
        user = api.signup(password=password)
        token = api.login(user["username"], password)
        wrong = api.call("POST", "/api/auth/login", json={"username": user["username"], "password": password + "x"})
        assert wrong.status_code == 401
        admin = api.signup(password=password)  # an admin token for this server's secret
        subprocess.run(
            [sys.executable, "-m", "flask", "--app", "wsgi", "create-admin", admin["username"], "--password", password],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
            timeout=120,
        )
        admin_tok = api.login(admin["username"], password)
        coupon = api.create_coupon(admin_tok, 3)
        assert api.call("POST", f"/api/coupon/{coupon['id']}/issue", token).status_code == 202
        assert api.call("POST", f"/api/coupon/{coupon['id']}/issue", token + "x").status_code == 401
        assert api.call("GET", f"/api/coupon/{coupon['id']}/issue", token).status_code == 200
        wait_drained(engine, coupon["id"], 1)
        wait_for(
            lambda: any(e["result"] == "inserted" for e in _consumer_events(stack)), 30, "the consumer's events line"
        )
    finally:
        stack.stop()
    text = "".join(p.log() for p in stack.procs)
    assert '"logger":"gunicorn.access"' in text  # the access log really was on
    for secret in (password, token, token.split(".")[2], admin_tok, env["JWT_SECRET_KEY"], "Bearer "):
        assert secret not in text, f"a secret reached the logs: {secret[:12]}..."
    for proc in stack.procs:
        assert _lines(proc.log()), proc.name


@pytest.mark.slow
def test_every_process_logs_json_once_and_the_access_log_is_off_by_default(pipeline_env, tmp_path: Path) -> None:
    env = {k: v for k, v in pipeline_env.items() if k != "ACCESS_LOG"}
    stack = Stack(env, tmp_path)
    try:
        api = Api(stack.start_api(workers=1))
        scheduler, worker = stack.start_retry_machinery()
        for _ in range(20):
            assert requests.get(api.base + "/health", timeout=5).status_code == 200
        wait_for(lambda: any("started with PID" in d["msg"] for d in _lines(worker.log())), 30, "the rq worker")
        wait_for(lambda: _lines(scheduler.log()), 30, "the rq scheduler to log")
    finally:
        stack.stop()
    api_lines = _logs(stack, "api")
    assert api_lines[0]["msg"].startswith("Starting gunicorn") and api_lines[0]["proc"] == "gunicorn"
    assert not [d for d in api_lines if d["logger"] == "gunicorn.access"]  # no per-request line on the hot path
    worker_lines = _lines(worker.log())
    assert sum("started with PID" in d["msg"] for d in worker_lines) == 1, "rq's lines must not be doubled"
    assert {d["proc"] for d in worker_lines} == {"rq"}
    assert all(d["proc"] == "rq_scheduler" for d in _lines(scheduler.log()))
