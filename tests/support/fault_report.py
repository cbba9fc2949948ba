"""The fault injection and failover reports: rows the fault tests append (sent, accepted, issued, recovery
seconds), printed at the end of the run by tests/conftest.py, also when the tests ran on pytest-xdist workers."""

from __future__ import annotations

from typing import Any

FAULT_REPORT: list[dict[str, Any]] = []
# The Kafka cluster failovers (tests/integration/test_kafka_failover.py): failover, sent, accepted, issued, recovery.
FAILOVER_REPORT: list[dict[str, Any]] = []
