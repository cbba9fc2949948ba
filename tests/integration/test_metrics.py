"""Prometheus metrics scraped from the real API (all workers) and the real consumer after a small sale."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import requests

from harness.client import Api, burst
from harness.invariants import wait_drained
from harness.processes import Stack, free_port, wait_for


def _value(text: str, name: str, labels: str = "") -> float:
    pattern = (
        rf"^{re.escape(name)}{re.escape(labels)} ([0-9.e+-]+)$" if labels else rf"^{re.escape(name)} ([0-9.e+-]+)$"
    )
    found = re.findall(pattern, text, re.M)
    return sum(float(v) for v in found)


@pytest.mark.slow
def test_api_and_consumer_metrics_match_the_sale(pipeline_env, tmp_path, admin_token, mint, engine) -> None:
    consumer_port = free_port()
    stack = Stack(dict(pipeline_env, CONSUMER_METRICS_PORT=str(consumer_port)), tmp_path)
    try:
        api = Api(stack.start_api(workers=2))
        stack.start_consumer()
        coupon = api.create_coupon(admin_token, 30)
        users = mint(40)
        replies = burst(api.base, [("POST", f"/api/coupon/{coupon['id']}/issue", t) for _, t in users])
        dupes = burst(api.base, [("POST", f"/api/coupon/{coupon['id']}/issue", t) for _, t in users[:5]])
        assert sum(r[0] == 202 for r in replies) == 30 and all(r[0] == 409 for r in dupes)
        # The first five try again: a winner is told duplicate, a loser sold out once more.
        again_dup = sum(r[0] == 202 for r in replies[:5])
        wait_drained(engine, coupon["id"], 30)

        # Whichever worker answers, the numbers are the sum over both workers.
        for _ in range(4):
            text = requests.get(api.base + "/metrics", timeout=5).text
            assert _value(text, "coupon_issue_requests_total", '{outcome="accepted"}') == 30
            assert _value(text, "coupon_issue_requests_total", '{outcome="sold_out"}') == 10 + (5 - again_dup)
            assert _value(text, "coupon_issue_requests_total", '{outcome="duplicate"}') == again_dup
            assert _value(text, "coupon_kafka_record_events_sum") == 30
            assert _value(text, "coupon_gate_batch_size_sum") == 45
        assert 'endpoint="coupons.issue"' in text  # per-endpoint request metrics, not per path

        consumer = f"http://127.0.0.1:{consumer_port}/metrics"
        wait_for(
            lambda: (
                _value(requests.get(consumer, timeout=5).text, "coupon_consumer_rows_total", '{result="inserted"}')
                == 30
            ),
            30,
            "the consumer's counters",
        )
        text = requests.get(consumer, timeout=5).text
        assert _value(text, "coupon_consumer_messages_total") == 30
        assert _value(text, "coupon_consumer_batch_events_sum") == 30
        assert "coupon_consumer_lag{" in text
        # Stock of the live coupon, read from Redis and the DB at scrape time: sold out, all issued.
        stock = f'{{coupon_id="{coupon["id"]}",name="Black Friday chicken"}}'
        assert _value(text, "coupon_stock_total", stock) == 30 and _value(text, "coupon_stock_reserved", stock) == 30
        assert _value(text, "coupon_stock_remaining", stock) == 0 and _value(text, "coupon_stock_issued", stock) == 30
        assert _value(text, "coupon_failures", '{status="PENDING"}') == 0
        with engine.begin() as conn:
            conn.exec_driver_sql(
                "INSERT INTO failed_issued_coupons (coupon_id, user_id, payload, error, retry_count, is_resolved,"
                " status, created_at) VALUES (%s, %s, '{}', 'boom', 5, 0, 'DEAD', NOW(6))",
                (coupon["id"], users[0][0]),
            )
        text = requests.get(consumer, timeout=5).text
        assert _value(text, "coupon_failures", '{status="DEAD"}') == 1
    finally:
        stack.stop()


def _metrics_dir(pid: int) -> Path:
    """The folder of the metric files a worker has mapped (prometheus_client mmaps one file per metric type)."""
    maps = Path(f"/proc/{pid}/maps").read_text().splitlines()
    found = {Path(line.split(maxsplit=5)[-1]).parent for line in maps if line.endswith(f"_{pid}.db")}
    assert len(found) == 1, f"worker {pid} maps metric files in {found or 'no folder'}"
    return found.pop()


def test_the_masters_own_metrics_folder_goes_when_it_stops(base_env, migrated_db, tmp_path) -> None:
    stack = Stack(base_env, tmp_path)
    stack.start_api(metrics_dir=False)
    master = stack.procs[0]
    workers = Path(f"/proc/{master.pid}/task/{master.pid}/children").read_text().split()
    folder = _metrics_dir(int(workers[0]))
    assert folder.is_dir() and any(folder.iterdir())  # the worker's metric files
    stack.stop()
    assert not folder.exists()
