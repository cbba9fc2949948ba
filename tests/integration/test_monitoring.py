"""A real Prometheus scrapes a real stack (API, consumer, rq worker) while a sale runs: every query of every panel
of the Grafana dashboard returns data, and the consumer-lag alert fires while the consumer is frozen, then clears
once it drains. The Prometheus config and the rules come from scripts/prometheus_config.py, on a 2 s clock."""

from __future__ import annotations

import contextlib
import json
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from coupon.adapters.kafka_topics import delete_topics, ensure_topics
from harness.client import Api, burst
from harness.invariants import wait_drained
from harness.processes import ROOT, Proc, Stack, free_port, wait_for
from tests.integration.conftest import KAFKA

# A live stack, a real Prometheus and a sale: the whole suite (`make test`) runs them; the quick loop (`make check`)
# keeps the rule tests (tests/static/test_prometheus_rules.py).
pytestmark = pytest.mark.slow

DASHBOARD = json.loads((ROOT / "docker" / "grafana" / "dashboards" / "coupon-rush.json").read_text())
# Scrapes and evaluations every 2 s (timeout 1.8 s): 1 s left the API's scrape 800 ms, which a busy suite on two
# cores can overrun (the answer runs readiness checks), and a failed scrape blanks its series for that moment.
INTERVAL = "2s"
# Every `for:` of the production rules, shortened: the expressions are the production ones.
FOR = "2s"
# ConsumerLagGrowing compares the lag with its value 15 s before: that much history must be there first.
LAG_LOOKBACK_S = 16.0
LAG_ALERT = "ConsumerLagGrowing"


@dataclass
class Monitored:
    stack: Stack
    api: Api
    consumer: Proc
    prometheus: str
    started: float

    def query(self, expr: str) -> list[dict[str, Any]]:
        resp = requests.get(self.prometheus + "/api/v1/query", params={"query": expr}, timeout=10)
        body = resp.json()
        assert resp.status_code == 200 and body["status"] == "success", f"{expr}: {resp.text[:500]}"
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def alert_states(self, name: str) -> set[str]:
        alerts = requests.get(self.prometheus + "/api/v1/alerts", timeout=10).json()["data"]["alerts"]
        return {a["state"] for a in alerts if a["labels"]["alertname"] == name}


def _prometheus_binary() -> str:
    found = shutil.which("prometheus")
    assert found, "prometheus not found: run scripts/prometheus.sh install (scripts/test.sh does)"
    return found


def _generate(tmp: Path, *args: str) -> None:
    subprocess.run([sys.executable, str(ROOT / "scripts" / "prometheus_config.py"), *args], check=True, cwd=tmp)


@pytest.fixture(scope="module")
def monitored(
    base_env: dict[str, str], migrated_db: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Monitored]:
    tmp = tmp_path_factory.mktemp("monitoring")
    tag = uuid.uuid4().hex[:8]
    ports = {"api": free_port(), "consumer": free_port(), "rq": free_port(), "prometheus": free_port()}
    env = dict(
        base_env,
        KAFKA_ISSUE_TOPIC=f"test.{tag}.coupon.issue",
        KAFKA_DLQ_TOPIC=f"test.{tag}.coupon.issue.dlq",
        KAFKA_CONSUMER_GROUP=f"test.{tag}.coupon-issuer",
        CONSUMER_METRICS_PORT=str(ports["consumer"]),
        RQ_WORKER_METRICS_PORT=str(ports["rq"]),
    )
    ensure_topics(KAFKA, {env["KAFKA_ISSUE_TOPIC"]: 6, env["KAFKA_DLQ_TOPIC"]: 1})
    _generate(tmp, "rules", "--for", FOR, "--out", str(tmp / "alerts.yml"))
    _generate(
        tmp,
        "native",
        "--api",
        f"127.0.0.1:{ports['api']}",
        "--consumers",
        f"127.0.0.1:{ports['consumer']}",
        "--rq-worker",
        f"127.0.0.1:{ports['rq']}",
        "--rules",
        str(tmp / "alerts.yml"),
        "--interval",
        INTERVAL,
        "--out",
        str(tmp / "prometheus.yml"),
    )
    stack = Stack(env, tmp)
    try:
        # Prometheus first: the lag alert needs its lookback of history by the time the second case freezes the
        # consumer, and the stack's own start is most of that.
        url = f"http://127.0.0.1:{ports['prometheus']}"
        prometheus = stack._spawn(
            "prometheus",
            [
                _prometheus_binary(),
                f"--config.file={tmp / 'prometheus.yml'}",
                f"--storage.tsdb.path={tmp / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{ports['prometheus']}",
            ],
        )
        stack.start_api(port=ports["api"])
        consumer = stack.start_consumer()
        stack.start_retry_machinery()
        wait_for(lambda: requests.get(url + "/-/ready", timeout=2).ok, 30, "Prometheus to be ready")
        assert prometheus.alive(), prometheus.log()[-2000:]
        yield Monitored(stack, Api(stack.base_url), consumer, url, time.monotonic())
    finally:
        stack.stop()
        with contextlib.suppress(Exception):
            delete_topics(KAFKA, [env["KAFKA_ISSUE_TOPIC"], env["KAFKA_DLQ_TOPIC"]])


def _targets_up(m: Monitored) -> bool:
    up = {r["metric"]["job"]: r["value"][1] for r in m.query("up")}
    return up == {"api": "1", "consumer": "1", "rq-worker": "1"}


def test_every_dashboard_panel_returns_data_from_a_live_sale(monitored, admin_token, mint, engine) -> None:
    m = monitored
    wait_for(lambda: _targets_up(m), 20, "Prometheus to scrape the API, the consumer and the rq worker", interval=0.5)
    coupon = m.api.create_coupon(admin_token, 30)
    users = mint(40)
    replies = burst(m.api.base, [("POST", f"/api/coupon/{coupon['id']}/issue", t) for _, t in users])
    assert sorted({r[0] for r in replies}) == [202, 409] and sum(r[0] == 202 for r in replies) == 30
    wait_drained(engine, coupon["id"], 30)

    queries = [(p["title"], t["expr"]) for p in DASHBOARD["panels"] if p["type"] != "row" for t in p["targets"]]
    assert len(queries) > 20

    def empty() -> list[str]:
        return [f"{title}: {expr}" for title, expr in queries if not m.query(expr)]

    # rate() needs two scrapes after the sale; the consumer's gauges the scrape after the last row.
    missing: list[str] = []

    def all_answer() -> bool:
        missing[:] = empty()
        return not missing

    with contextlib.suppress(AssertionError):
        wait_for(all_answer, 20, "every panel query to return data", interval=1.0)
    assert not missing, "panel queries without data:\n  " + "\n  ".join(missing)
    sold_out = m.query(f'coupon_stock_sold_out_seconds{{coupon_id="{coupon["id"]}"}}')
    assert sold_out and 0 <= float(sold_out[0]["value"][1]) < 120
    accepted = m.query('sum(coupon_issue_requests_total{outcome="accepted"})')
    assert float(accepted[0]["value"][1]) == 30
    # Every hold of the sale was confirmed: none is waiting for the sweeper.
    unconfirmed = m.query(f'coupon_stock_unconfirmed_age_seconds{{coupon_id="{coupon["id"]}"}}')
    assert unconfirmed and float(unconfirmed[0]["value"][1]) == 0
    assert {r["metric"]["dependency"]: r["value"][1] for r in m.query("coupon_dependency_up")} == dict.fromkeys(
        ("redis", "database", "kafka"), "1"
    )


def test_the_lag_alert_fires_while_the_consumer_is_frozen_and_clears_once_it_drains(
    monitored, admin_token, mint, engine, fault_report
) -> None:
    m = monitored
    wait_for(lambda: _targets_up(m), 20, "every target up", interval=0.5)
    time.sleep(max(0.0, LAG_LOOKBACK_S - (time.monotonic() - m.started)))
    assert m.alert_states(LAG_ALERT) == set()
    coupon = m.api.create_coupon(admin_token, 1000)
    users = iter(mint(300))
    m.consumer.signal(signal.SIGSTOP)
    frozen_at = time.monotonic()
    sent = 0
    try:
        # The sale goes on: one request at a time, one Kafka record each, until the alert fires.
        while "firing" not in m.alert_states(LAG_ALERT):
            assert time.monotonic() - frozen_at < 30, f"{LAG_ALERT} did not fire within 30 s ({sent} records sent)"
            for _ in range(5):
                _, token = next(users)
                assert m.api.call("POST", f"/api/coupon/{coupon['id']}/issue", token).status_code == 202
                sent += 1
            time.sleep(0.2)
        fired_after = time.monotonic() - frozen_at
    finally:
        m.consumer.signal(signal.SIGCONT)
    # Fired within its `for:` (2 s) plus a few evaluations: the lag rose from the first record on.
    assert fired_after < 15, fired_after
    resumed_at = time.monotonic()
    wait_drained(engine, coupon["id"], sent, timeout=60)
    wait_for(lambda: not m.alert_states(LAG_ALERT), 20, f"{LAG_ALERT} to clear once the consumer drained", interval=0.5)
    lag = m.query("sum(coupon_consumer_group_lag)")
    assert lag and float(lag[0]["value"][1]) == 0
    fault_report.append(
        {
            "case": f"{LAG_ALERT}: consumer frozen mid-sale (for: {FOR})",
            "sent": sent,
            "accepted": sent,
            "issued": sent,
            "rejected": 0,
            "recovery_s": round(time.monotonic() - resumed_at, 1),
            "fired_after_s": round(fired_after, 1),
        }
    )
