"""Liveness, readiness with a really stopped dependency, and the admin CLI."""

from __future__ import annotations

import pytest

from harness.client import Api
from harness.processes import wait_for
from harness.services import services
from tests.support.cli import flask_cli


def test_liveness(server: Api) -> None:
    resp = server.call("GET", "/health")
    assert resp.status_code == 200 and resp.json()["data"]["status"] == "UP"


def test_readiness_all_up(server: Api) -> None:
    resp = server.call("GET", "/health/ready")
    assert resp.status_code == 200, resp.text
    checks = resp.json()["data"]["checks"]
    assert {name: c["status"] for name, c in checks.items()} == {"redis": "UP", "database": "UP", "kafka": "UP"}


def test_readiness_reports_a_stopped_redis(server: Api) -> None:
    services("stop", "redis")
    try:
        resp = server.call("GET", "/health/ready")
        assert resp.status_code == 503
        body = resp.json()
        assert body["resultType"] == "ERROR" and body["errorMessage"]["code"] == "E5030"
        checks = body["data"]["checks"]
        assert checks["redis"]["status"] == "DOWN"
        assert checks["database"]["status"] == "UP" and checks["kafka"]["status"] == "UP"
    finally:
        services("start", "redis")
    wait_for(lambda: server.call("GET", "/health/ready").status_code == 200, 30, "readiness to recover")


@pytest.mark.slow
def test_create_admin_cli_is_idempotent(base_env, engine) -> None:
    from harness.invariants import scalar

    for _ in range(2):
        out = flask_cli(base_env, "create-admin", "root-admin", "--password", "pw-123456789")
        assert out.returncode == 0, out.stderr
    assert scalar(engine, "SELECT COUNT(*) FROM users WHERE username = 'root-admin' AND role = 'ADMIN'") == 1
