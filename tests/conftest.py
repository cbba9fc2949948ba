"""Suite-wide hooks, loaded by the pytest-xdist controller as well as by its workers: the fault report."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.support.fault_report import FAULT_REPORT


def pytest_sessionfinish(session: pytest.Session) -> None:
    # An xdist worker hands its rows to the controller, which prints the report.
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:
        workeroutput["fault_report"] = json.dumps(FAULT_REPORT)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    FAULT_REPORT.extend(json.loads(getattr(node, "workeroutput", {}).get("fault_report", "[]")))


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not FAULT_REPORT:
        return
    terminalreporter.section("fault injection report")
    for row in FAULT_REPORT:
        terminalreporter.write_line(
            f"{row['case']:<45} sent={row['sent']:<5} accepted={row['accepted']:<5} issued={row['issued']:<5}"
            f" rejected={row['rejected']:<4} recovery={row['recovery_s']}s"
            + (
                f" unconfirmed={row['unconfirmed']} settled={row['settled']} first={row['first']}"
                if "unconfirmed" in row
                else ""
            )
        )
