"""Flask CLI commands run in-process (Flask's CliRunner) as their own process would run them."""

from __future__ import annotations

from typing import Any

from click.testing import Result


def run_cli(app: Any, *args: str) -> Result:
    """`flask <args>` in a fresh app context, so with a fresh DB session (no snapshot left by an earlier command)."""
    with app.app_context():
        return app.test_cli_runner().invoke(args=list(args))
