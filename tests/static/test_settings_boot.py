"""Bad settings stop a process at its entry point with one line per variable on stderr, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BAD = {"DB_POOL_SIZE": "ten", "CONSUMER_NICE": "25"}
LINES = [
    "invalid configuration:",
    "  DB_POOL_SIZE must be an integer, got 'ten'",
    "  CONSUMER_NICE must be at most 19, got '25'",
]


@pytest.mark.parametrize(
    ("argv", "status"),
    [
        # What gunicorn's worker and `flask --app wsgi` import: 4 is gunicorn's "app failed to load" (the master stops).
        (["-c", "import wsgi"], 4),
        (["-m", "workers.consumer"], 2),
    ],
    ids=["wsgi", "consumer"],
)
def test_bad_settings_end_the_process_with_their_lines(argv: list[str], status: int) -> None:
    env = {k: v for k, v in os.environ.items() if k not in BAD} | BAD | {"PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, *argv], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == status, done.stderr
    assert done.stderr.splitlines()[-3:] == LINES, done.stderr
    assert "Traceback" not in done.stderr
