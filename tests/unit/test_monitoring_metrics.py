"""The metrics behind the alerts, without services: the periodic jobs' counters, the group lag gauge, readiness as a
gauge, the scrape-time collectors in /metrics' answer, and the Prometheus config generator."""

from __future__ import annotations

import importlib.util
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml
from flask import Flask
from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.openmetrics.exposition import CONTENT_TYPE_LATEST as OPENMETRICS

from coupon.http import readiness_metrics
from coupon.observability import metrics_endpoint
from coupon.observability.instruments import JOB_LAST_SUCCESS, JOB_RUNS
from workers import jobs
from workers.rq_metrics import GroupLag

ROOT = Path(__file__).resolve().parents[2]


def _value(metric: Any, *labels: str) -> float:
    return float(metric.labels(*labels)._value.get())


def test_a_job_run_is_counted_by_result_and_a_success_moves_its_timestamp() -> None:
    jobs.start_job_metrics(now=lambda: 1000.0)
    assert _value(JOB_LAST_SUCCESS, jobs.SETTLE) == 1000.0  # from the worker's start, until a run succeeds
    ok, error = _value(JOB_RUNS, jobs.SETTLE, "ok"), _value(JOB_RUNS, jobs.SETTLE, "error")
    with jobs._counted(jobs.SETTLE):
        pass
    assert _value(JOB_RUNS, jobs.SETTLE, "ok") == ok + 1 and _value(JOB_LAST_SUCCESS, jobs.SETTLE) > 1000.0
    jobs.start_job_metrics(now=lambda: 1000.0)
    with pytest.raises(RuntimeError), jobs._counted(jobs.SETTLE):
        raise RuntimeError("DB down")
    assert _value(JOB_RUNS, jobs.SETTLE, "error") == error + 1
    assert _value(JOB_LAST_SUCCESS, jobs.SETTLE) == 1000.0  # a failed run is no success


class _Offsets:
    def __init__(self, ends: dict[int, int], done: dict[int, int], fail: bool = False) -> None:
        self.ends, self.done, self.fail = ends, done, fail

    def offsets(self) -> tuple[dict[int, int], dict[int, int]]:
        if self.fail:
            raise ConnectionError("no broker")
        return self.ends, self.done


def _samples(collector: Any) -> dict[tuple[str, ...], float]:
    return {tuple(s.labels.values()): s.value for family in collector.collect() for s in family.samples}


def test_group_lag_is_what_the_group_has_not_committed_per_partition() -> None:
    lag = GroupLag(_Offsets({0: 10, 1: 5, 2: 0}, {0: 4, 1: 5}))
    # A partition the group never committed counts from 0; a commit past the end reads 0, never negative.
    assert _samples(lag) == {("0",): 6, ("1",): 0, ("2",): 0}
    assert _samples(GroupLag(_Offsets({0: 3}, {0: 9}))) == {("0",): 0}


def test_group_lag_is_left_out_while_kafka_does_not_answer() -> None:
    assert _samples(GroupLag(_Offsets({}, {}, fail=True))) == {}
    assert _samples(GroupLag(None)) == {}


@pytest.fixture
def app_context() -> Iterator[None]:
    with Flask("probe").app_context():
        yield


def test_readiness_becomes_one_gauge_per_dependency(monkeypatch: pytest.MonkeyPatch, app_context: None) -> None:
    def down() -> None:
        raise ConnectionError("refused")

    monkeypatch.setattr(readiness_metrics, "dependency_checks", lambda: {"redis": lambda: True, "kafka": down})
    assert _samples(readiness_metrics.DependencyGauge()) == {("redis",): 1.0, ("kafka",): 0.0}


def test_a_stuck_check_reads_down_without_holding_the_scrape_or_piling_up(
    monkeypatch: pytest.MonkeyPatch, app_context: None
) -> None:
    release, calls = threading.Event(), []

    def stuck() -> None:
        calls.append(1)
        release.wait(10)

    monkeypatch.setattr(readiness_metrics, "dependency_checks", lambda: {"database": stuck, "redis": lambda: True})
    gauge = readiness_metrics.DependencyGauge(budget_s=0.2)
    started = time.monotonic()
    assert _samples(gauge) == {("database",): 0.0, ("redis",): 1.0}
    assert _samples(gauge) == {("database",): 0.0, ("redis",): 1.0}
    assert time.monotonic() - started < 2 and calls == [1]  # the second scrape waited on the same stuck check
    release.set()
    time.sleep(0.1)
    assert _samples(gauge) == {("database",): 1.0, ("redis",): 1.0}


class _Fake:
    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily("coupon_probe_up", "probe", labels=["dependency"])
        family.add_metric(["redis"], 1.0)
        yield family


@pytest.mark.parametrize("accept", ["text/plain", OPENMETRICS])
def test_the_answer_adds_the_scrape_collectors_to_the_registry(accept: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # The process' own registry (importing gunicorn.conf.py, as a static test does, sets the multiprocess folder).
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    registry = CollectorRegistry()
    Counter("coupon_probe_total", "probe", registry=registry).inc()
    exporter = metrics_endpoint._Exporter(app=None, registry=registry, group_by="endpoint")
    exporter.scrape_collectors = [_Fake()]
    text, content_type = exporter.generate_metrics(accept)
    assert content_type.split(";")[0] == accept.split(";")[0]
    assert "coupon_probe_total 1.0" in text and 'coupon_probe_up{dependency="redis"} 1.0' in text
    if accept == OPENMETRICS:
        assert text.count("# EOF") == 1 and text.rstrip().endswith("# EOF")  # one document, not two glued


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("prometheus_config", ROOT / "scripts" / "prometheus_config.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["prometheus_config"] = module
    spec.loader.exec_module(module)
    return module


def test_the_native_config_scrapes_what_it_is_given_with_the_rules(tmp_path: Path) -> None:
    gen = _generator()
    out = tmp_path / "prometheus.yml"
    args = ["native", "--api", "127.0.0.1:8000", "--consumers", "127.0.0.1:9200,127.0.0.1:9201", "--interval", "1s"]
    assert gen.main([*args, "--out", str(out)]) == 0
    config = yaml.safe_load(out.read_text())
    assert config["global"] == {"scrape_interval": "1s", "evaluation_interval": "1s", "scrape_timeout": "800ms"}
    targets = {job["job_name"]: job["static_configs"][0]["targets"] for job in config["scrape_configs"]}
    assert targets == {"api": ["127.0.0.1:8000"], "consumer": ["127.0.0.1:9200", "127.0.0.1:9201"]}
    assert config["rule_files"] == [str(ROOT / "docker" / "prometheus" / "alerts.yml")]
    # The same jobs as the compose config: one table for both.
    assert [j["job_name"] for j in gen.compose()["scrape_configs"]] == ["api", "consumer", "rq-worker"]
    assert gen._timeout("5s") == "4800ms" and gen._timeout("30s") == "9800ms"


def test_the_test_rules_differ_from_production_only_in_for() -> None:
    gen = _generator()
    production = gen.rules_with_for(gen.RULES, "2m")  # a round trip of the real file
    short = gen.rules_with_for(gen.RULES, "2s")
    for prod, test in zip(production["groups"][0]["rules"], short["groups"][0]["rules"], strict=True):
        assert test["for"] == "2s"
        assert {k: v for k, v in test.items() if k != "for"} == {k: v for k, v in prod.items() if k != "for"}
