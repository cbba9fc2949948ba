"""Suite-wide hooks, loaded by the pytest-xdist controller as well as by its workers: the order and scheduling of the
tests (longest first, tests.support.scheduling) and the fault report."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.support import scheduling
from tests.support.fault_report import FAILOVER_REPORT, FAULT_REPORT


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # The same order on every worker and the controller (xdist checks that all collected the same list).
    if hasattr(config, "workerinput"):  # an xdist worker: its collection is what the scheduler hands out
        scheduling.longest_first(items)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    if config.getoption("dist") != "load":  # an explicit --dist other than the default keeps xdist's own
        return None
    return scheduling.make_scheduler(config, log)


def pytest_sessionfinish(session: pytest.Session) -> None:
    # An xdist worker hands its rows to the controller, which prints the report.
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:
        workeroutput["fault_report"] = json.dumps(FAULT_REPORT)
        workeroutput["failover_report"] = json.dumps(FAILOVER_REPORT)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    FAULT_REPORT.extend(json.loads(getattr(node, "workeroutput", {}).get("fault_report", "[]")))
    FAILOVER_REPORT.extend(json.loads(getattr(node, "workeroutput", {}).get("failover_report", "[]")))


def pytest_terminal_summary(terminalreporter: Any) -> None:
    _failover_summary(terminalreporter)
    if not FAULT_REPORT:
        return
    terminalreporter.section("fault injection report")
    for row in FAULT_REPORT:
        base = ("case", "sent", "accepted", "issued", "rejected", "recovery_s")
        extra = {k: v for k, v in row.items() if k not in base}
        terminalreporter.write_line(
            f"{row['case']:<52} sent={row['sent']:<5} accepted={row['accepted']:<5} issued={row['issued']:<5}"
            f" rejected={row['rejected']:<4} recovery={row['recovery_s']}s"
            + "".join(f" {k}={v}" for k, v in extra.items())
        )


def _failover_summary(terminalreporter: Any) -> None:
    if not FAILOVER_REPORT:
        return
    terminalreporter.section("failover report")
    for row in FAILOVER_REPORT:
        extra = {k: v for k, v in row.items() if k not in ("failover", "sent", "accepted", "issued", "recovery_s")}
        terminalreporter.write_line(
            f"{row['failover']:<62} sent={row['sent']:<5} accepted={row['accepted']:<5} issued={row['issued']:<5}"
            f" recovery={row['recovery_s']}s " + " ".join(f"{k}={v}" for k, v in extra.items())
        )
