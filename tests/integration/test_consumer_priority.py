"""The consumer gives way to the API on a shared host: it runs at CONSUMER_NICE, and, leading its own session, lowers
its scheduler group (Linux autogroup) too, or nice would rank it only against its own session's processes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.support.processes import Stack


def _niceness(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[16])


def _autogroup_nice(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/autogroup").read_text().split()[-1])
    except OSError:
        return None


@pytest.mark.parametrize("nice", ["10", "0"])
def test_the_consumer_runs_at_its_configured_niceness(pipeline_env: dict[str, str], tmp_path: Path, nice: str) -> None:
    stack = Stack(dict(pipeline_env, CONSUMER_NICE=nice), tmp_path)
    try:
        consumer = stack.start_consumer()  # assigned: it is past its start-up
        base = os.nice(0)
        assert _niceness(consumer.pid) == min(base + int(nice), 19)
        assert f"running at niceness {min(base + int(nice), 19)}" in consumer.log()
        # Its own session's group: lowered with it, or left at the 0 a new group starts with (None: no autogroup).
        assert _autogroup_nice(consumer.pid) in (None, min(base + int(nice), 19) if nice != "0" else 0)
    finally:
        stack.stop()
