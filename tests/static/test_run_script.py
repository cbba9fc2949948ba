"""scripts/run.sh refuses the dev default passwords outside dev/test (admin account and rq-dashboard)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _run(**env: str) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k not in ("ADMIN_PASSWORD", "RQ_DASHBOARD_PASSWORD", "APP_ENV")}
    return subprocess.run(
        ["bash", str(ROOT / "scripts" / "run.sh")], env=dict(base, **env), capture_output=True, text=True, timeout=20
    )


@pytest.mark.parametrize(
    ("env", "name"),
    [
        ({}, "ADMIN_PASSWORD"),
        ({"ADMIN_PASSWORD": "a-real-one-9f3a", "RQ_DASHBOARD_PASSWORD": "admin-password"}, "RQ_DASHBOARD_PASSWORD"),
    ],
)
def test_production_refuses_default_passwords(env: dict, name: str) -> None:
    out = _run(APP_ENV="production", **env)
    assert out.returncode == 1 and f"{name} is the dev default" in out.stderr, out.stderr
