"""`make bench`'s summary names issue 33's measures with their targets, from the list `make bench-compare` uses."""

from __future__ import annotations

from typing import Any

from bench.bench import _per_request_rows
from bench.compare import MEASURES


def _results() -> dict[str, Any]:
    return {
        "issue": {"cpu_us_per_request": {"api": 751.4}},
        "issue_draining": {"rps": 1725.2, "latency": {"p99": 138.1}},
        "open_loop_draining": {"p99_ms": 285.0},
        "steady_cost": {"total_us_per_coupon": 912.0},
        "flash_sale": {"seconds_until_last_reply": 6.04},
        "ceiling": {"rps": 2856.0},
    }


def test_every_measure_is_reported_with_its_value_and_target() -> None:
    rows = _per_request_rows(_results())
    assert len(rows) == len(MEASURES)
    for row, (label, _, target, lower_better) in zip(rows, MEASURES, strict=True):
        assert row.startswith(f"| {label} | **")
        assert f"{'≤' if lower_better else '≥'} ×{target} the base's" in row
    assert "**751**" in rows[0] and "**6.04**" in rows[5]


def test_a_stage_that_did_not_run_leaves_its_rows_out() -> None:
    results = _results()
    del results["flash_sale"], results["open_loop_draining"]
    labels = [row.split(" | ")[0][2:] for row in _per_request_rows(results)]
    assert labels == [label for label, *_ in MEASURES if "flash" not in label and "open-loop" not in label]
