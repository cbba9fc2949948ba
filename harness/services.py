"""The services this checkout's scripts started, as the tests reach them: scripts/services.sh with the test's
environment (so it acts on the instance the test talks to) and the pid files of that instance."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def state_dir(env: dict[str, str] | None = None) -> Path:
    """Where scripts/lib/common.sh keeps this instance's state (SERVICES_INSTANCE; .local/ for instance 0)."""
    instance = int((env or os.environ).get("SERVICES_INSTANCE", "0") or 0)
    return ROOT / ".local" if instance == 0 else ROOT / ".local" / "instances" / str(instance)


def pid_file(name: str, env: dict[str, str] | None = None) -> Path:
    """The pid file of a service (redis, mariadb, kafka) or a cluster node (redis-cluster-PORT)."""
    return state_dir(env) / "run" / f"{name}.pid"


def services(*args: str, env: dict[str, str] | None = None, timeout: float = 300) -> str:
    """Run scripts/services.sh ARGS for the test's instance; its output, or an AssertionError showing it."""
    out = subprocess.run(
        [str(ROOT / "scripts" / "services.sh"), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env if env is not None else dict(os.environ),
    )
    assert out.returncode == 0, f"services.sh {' '.join(args)} failed:\n{out.stdout}\n{out.stderr}"
    return out.stdout


def use_worker_services() -> str | None:
    """Under pytest-xdist, point this worker at its own set of services; returns the worker id, or None.

    scripts/test.sh starts one set per worker (SERVICES_INSTANCE=N, ports of its own) and describes it in
    TEST_SERVICES_<worker>, e.g. "SERVICES_INSTANCE=1 REDIS_PORT=7379 ... KAFKA_BOOTSTRAP_SERVERS=...". Every
    process a test starts inherits it, so a test that freezes or restarts a service only touches its own set.
    """
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    spec = os.environ.get(f"TEST_SERVICES_{worker}") if worker else None
    if spec:
        os.environ.update(item.split("=", 1) for item in spec.split())
    return worker


def forget_redis_data(env: dict[str, str] | None = None) -> None:
    """Remove the stopped Redis' append-only file, so its next start is empty (a lost disk, or no persistence)."""
    import shutil

    shutil.rmtree(state_dir(env) / "redis", ignore_errors=True)
