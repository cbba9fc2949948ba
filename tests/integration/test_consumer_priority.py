"""The consumer gives way to the API on a shared host: it runs at CONSUMER_NICE, and, leading its own session, lowers
its scheduler group (Linux autogroup) too, or nice would rank it only against its own session's processes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from harness.processes import Stack


def _niceness(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[16])


def _autogroup_nice(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/autogroup").read_text().split()[-1])
    except OSError:
        return None


@pytest.mark.parametrize("nice", [None, "10", "0"])
def test_the_consumer_runs_at_its_configured_niceness(
    pipeline_env: dict[str, str], tmp_path: Path, nice: str | None
) -> None:
    env = {k: v for k, v in pipeline_env.items() if k != "CONSUMER_NICE"}
    if nice is not None:
        env["CONSUMER_NICE"] = nice
    increment = 19 if nice is None else int(nice)  # unset: the documented default
    stack = Stack(env, tmp_path)
    try:
        consumer = stack.start_consumer()  # assigned: it is past its start-up
        expected = min(os.nice(0) + increment, 19)
        assert _niceness(consumer.pid) == expected
        assert f"running at niceness {expected}" in consumer.log()
        # Its own session's group: lowered with it, or left at the 0 a new group starts with (None: no autogroup).
        assert _autogroup_nice(consumer.pid) in (None, expected if increment else 0)
    finally:
        stack.stop()
