"""Operating the retry machinery: idempotent schedule registration, the failures CLI, rq-dashboard behind a login."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa
from redis import Redis
from rq_scheduler import Scheduler

from harness.invariants import issued_rows
from harness.processes import ROOT, Stack, free_port, wait_for
from tests.integration.conftest import TEST_REDIS_URL
from tests.support.cli import flask_cli
from workers.jobs import QUEUE
from workers.schedule import JOB_ID


def _run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.slow
def test_periodic_job_is_registered_once(base_env) -> None:
    outs = [_run(base_env, "-m", "workers.schedule") for _ in range(3)]
    assert all(o.returncode == 0 for o in outs), outs[0].stderr
    assert "created" in outs[0].stderr and all("unchanged" in o.stderr for o in outs[1:])
    jobs = [
        j for j in Scheduler(queue_name=QUEUE, connection=Redis.from_url(TEST_REDIS_URL)).get_jobs() if j.id == JOB_ID
    ]
    assert len(jobs) == 1
    changed = _run(dict(base_env, REPUBLISH_INTERVAL_SECONDS="3"), "-m", "workers.schedule")
    assert "replaced" in changed.stderr
    jobs = [
        j for j in Scheduler(queue_name=QUEUE, connection=Redis.from_url(TEST_REDIS_URL)).get_jobs() if j.id == JOB_ID
    ]
    assert len(jobs) == 1 and jobs[0].meta["interval"] == 3


@pytest.mark.slow
def test_failures_cli_counts_and_retry_all(base_env, pipeline_env, engine: sa.Engine) -> None:
    with engine.begin() as conn:
        for i in range(3):
            conn.exec_driver_sql(
                "INSERT INTO failed_issued_coupons (coupon_id, user_id, payload, error, retry_count, is_resolved,"
                " status, created_at) VALUES (%s, %s, %s, 'boom', 0, 0, 'PENDING', NOW(6))",
                (
                    f"00000000-0000-4000-8000-00000000000{i}",
                    f"00000000-0000-4000-8000-10000000000{i}",
                    '{"event_id": "e", "coupon_id": "00000000-0000-4000-8000-000000000000",'
                    ' "user_id": "00000000-0000-4000-8000-100000000000", "rank": 1, "requested_at": "t"}',
                ),
            )
    counts = flask_cli(pipeline_env, "failures", "counts")
    assert counts.returncode == 0 and "PENDING  3" in counts.stdout
    retried = flask_cli(pipeline_env, "failures", "retry", "--all")
    assert retried.returncode == 0 and "republished 3" in retried.stdout, retried.stderr
    rows = [r[0] for r in engine.connect().execute(sa.text("SELECT retry_count FROM failed_issued_coupons"))]
    assert rows == [1, 1, 1]
    missing = flask_cli(pipeline_env, "failures", "retry", "999999")
    assert missing.returncode == 1 and "no unresolved failure record" in missing.stderr


def test_rq_dashboard_requires_credentials(base_env, tmp_path) -> None:
    port = free_port()
    stack = Stack(base_env, tmp_path)
    bin_dir = Path(sys.executable).parent
    stack._spawn(
        "rq-dashboard",
        [
            str(bin_dir / "rq-dashboard"),
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
            "--redis-url",
            TEST_REDIS_URL,
            "--username",
            "ops",
            "--password",
            "s3cret-pass",
        ],
    )
    try:
        url = f"http://127.0.0.1:{port}/"
        wait_for(lambda: requests.get(url, timeout=1).status_code in (200, 401), 30, "rq-dashboard to answer")
        assert requests.get(url, timeout=5).status_code == 401
        assert requests.get(url, auth=("ops", "wrong"), timeout=5).status_code == 401
        assert requests.get(url, auth=("ops", "s3cret-pass"), timeout=5).status_code == 200
    finally:
        stack.stop()


@pytest.mark.slow
@pytest.mark.parametrize("redis_mode", ["standalone", "cluster"], indirect=True)
def test_reconcile_agrees_after_a_sale_and_flags_a_leaked_reservation(
    stack, api, admin_token, mint, engine, rdb
) -> None:
    from coupon.adapters import keys
    from harness.client import burst

    coupon = api.create_coupon(admin_token, 20)
    users = mint(30)
    burst(api.base, [("POST", f"/api/coupon/{coupon['id']}/issue", t) for _, t in users])
    # Right after the sale the consumer may still be writing: --wait looks again until the rows are all in.
    ok = flask_cli(stack.env, "reconcile", coupon["id"], "--wait", "60")
    assert ok.returncode == 0 and "OK: Redis and the DB agree" in ok.stdout, ok.stdout + ok.stderr
    assert "issued_rows          20" in ok.stdout
    assert issued_rows(engine, coupon["id"]) == 20
    rdb.incr(keys.issued(coupon["id"]))  # a reservation that no request holds any more
    started = time.monotonic()
    bad = flask_cli(stack.env, "reconcile", coupon["id"], "--wait", "1.5")
    waited = time.monotonic() - started
    assert bad.returncode == 1 and "MISMATCH: Redis reserved 21 != DB issued 20" in bad.stderr, bad.stderr
    # It waited the time it was given, saying what it waits for, and no longer: a mismatch that stays is reported.
    assert "[reconcile] not yet: 20 rows, Redis reserved 21" in bad.stderr and 1.5 <= waited < 10, (waited, bad.stderr)
    started = time.monotonic()
    unknown = flask_cli(stack.env, "reconcile", "00000000-0000-4000-8000-000000000000", "--wait", "30")
    assert unknown.returncode == 1 and "E3001" in unknown.stderr
    assert time.monotonic() - started < 10, "an unknown coupon is an error at once, not something to wait for"
