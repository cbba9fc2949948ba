"""Longest tests first across the xdist workers, from the durations a full run measured (tests/durations.json).

xdist's default scheduler hands each worker a long slice of the suite in file order, so the run ends with one
worker finishing a slice of slow tests while the others idle. Here every test is its own unit, handed out in
order of its last measured duration (longest first), so the slow ones start at once and the short ones fill
the gaps. The modules in SERIAL_MODULES share one service and take turns on it anyway: they go to one worker,
whole, as one unit weighted by their sum.

Refresh the table after a full run: `scripts/test.sh --junitxml=.local/junit.xml` and then
`python -m tests.support.scheduling .local/junit.xml` (tests under MIN_SECONDS are left out: they fill gaps).
"""

from __future__ import annotations

import json
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

DURATIONS = Path(__file__).resolve().parents[1] / "durations.json"
# The Kafka failover cases share one three-broker cluster under a lock: on several workers they would only wait. The
# monitoring cases share one stack and one Prometheus (module fixture): split, each worker would start its own.
SERIAL_MODULES = frozenset({"tests/integration/test_kafka_failover.py", "tests/integration/test_monitoring.py"})
MIN_SECONDS = 2.0


def _durations() -> dict[str, float]:
    try:
        table: dict[str, float] = json.loads(DURATIONS.read_text())
    except (OSError, ValueError):
        return {}
    return table


def unit_of(nodeid: str) -> str:
    """The scheduling unit of a test: its module for the serial modules, else the test itself."""
    module = nodeid.split("::", 1)[0]
    return module if module in SERIAL_MODULES else nodeid


def longest_first(items: list[pytest.Item]) -> None:
    """Reorder in place: units by measured seconds, longest first; unmeasured ones after, in collection order."""
    table = _durations()
    weight: dict[str, float] = {}
    for item in items:
        unit = unit_of(item.nodeid)
        weight[unit] = weight.get(unit, 0.0) + table.get(item.nodeid, 0.0)
    position = {item.nodeid: i for i, item in enumerate(items)}
    first: dict[str, int] = {}
    for i, item in enumerate(items):
        first.setdefault(unit_of(item.nodeid), i)
    items.sort(key=lambda item: (-weight[unit_of(item.nodeid)], first[unit_of(item.nodeid)], position[item.nodeid]))


def make_scheduler(config: pytest.Config, log: Any) -> Any:
    from xdist.scheduler import LoadScopeScheduling

    class LongestFirstScheduling(LoadScopeScheduling):  # type: ignore[misc]
        """LoadScope with a unit per test (per module for SERIAL_MODULES), in collection order (longest first)."""

        def _split_scope(self, nodeid: str) -> str:
            return unit_of(nodeid)

    config.option.loadscopereorder = False  # keep the longest-first order of the collection
    return LongestFirstScheduling(config, log)


def update(junit_xml: Path) -> dict[str, float]:
    """tests/durations.json from a run's JUnit XML: the tests that took MIN_SECONDS or more."""
    table: dict[str, float] = {}
    for case in ET.parse(junit_xml).getroot().iter("testcase"):
        seconds = float(case.get("time", "0"))
        if seconds < MIN_SECONDS:
            continue
        parts = (case.get("classname") or "").split(".")
        if parts[-1].startswith("Test"):  # a test class: module path, class, name
            nodeid = "/".join(parts[:-1]) + ".py::" + parts[-1] + "::" + (case.get("name") or "")
        else:
            nodeid = "/".join(parts) + ".py::" + (case.get("name") or "")
        table[nodeid] = round(seconds, 1)
    DURATIONS.write_text(json.dumps(dict(sorted(table.items())), indent=0) + "\n")
    return table


if __name__ == "__main__":
    measured = update(Path(sys.argv[1]))
    print(f"{DURATIONS}: {len(measured)} tests of {MIN_SECONDS} s or more, {sum(measured.values()):.0f} s in all")
