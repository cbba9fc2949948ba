"""Readiness: every dependency is asked, and each answer is reported."""

from __future__ import annotations

import time
from collections.abc import Callable

# A check passes unless it raises; whatever it returns is ignored.
Check = Callable[[], object]


def readiness(checks: dict[str, Check]) -> tuple[bool, dict[str, dict[str, object]]]:
    report: dict[str, dict[str, object]] = {}
    ok = True
    for name, check in checks.items():
        started = time.perf_counter()
        try:
            check()
        except Exception as exc:
            ok = False
            report[name] = {"status": "DOWN", "error": str(exc)[:200] or type(exc).__name__}
        else:
            report[name] = {"status": "UP"}
        report[name]["latencyMs"] = round((time.perf_counter() - started) * 1000, 1)
    return ok, report
