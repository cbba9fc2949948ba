"""Running the `flask` commands in tests: in this process through Flask's CLI runner (no interpreter start-up per
call), or as an operator runs them, in a process of their own (the real entry point)."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any
from unittest import mock

from coupon import create_app, resources
from coupon.extensions import db
from harness.processes import ROOT


def overrides(env: dict[str, str]) -> dict[str, Any]:
    """The settings of a test environment (DB, Redis, Kafka topics and group), by environment-variable name."""
    return {
        "APP_ENV": "test",
        "DATABASE_URL": env["DATABASE_URL"],
        "REDIS_URL": env["REDIS_URL"],
        "RQ_REDIS_URL": env["RQ_REDIS_URL"],
        "KAFKA_BOOTSTRAP_SERVERS": env["KAFKA_BOOTSTRAP_SERVERS"],
        "KAFKA_ISSUE_TOPIC": env["KAFKA_ISSUE_TOPIC"],
        "KAFKA_DLQ_TOPIC": env["KAFKA_DLQ_TOPIC"],
        "KAFKA_CONSUMER_GROUP": env["KAFKA_CONSUMER_GROUP"],
    }


def flask_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """`flask ARGS` in this process; exit code, stdout and stderr as a process's. The app is configured from `env`
    alone, as a `flask` process started with that environment would be (the command may read it too)."""
    with mock.patch.dict(os.environ, env, clear=True):
        app = create_app()
        try:
            # `flask` pushes the app's context for every command; the runner on app.cli does not.
            with app.app_context():
                result = app.test_cli_runner().invoke(args=list(args))
        finally:
            resources.of(app).publisher.close()
            with app.app_context():
                db.session.remove()
                db.engine.dispose()
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return subprocess.CompletedProcess(["flask", *args], result.exit_code, result.stdout, result.stderr)


def flask_process(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """`python -m flask --app wsgi ARGS` in a process of its own."""
    return subprocess.run(
        [sys.executable, "-m", "flask", "--app", "wsgi", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
