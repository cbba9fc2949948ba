"""GET /metrics: request counts and latency per endpoint (prometheus-flask-exporter), aggregated over the
gunicorn workers when PROMETHEUS_MULTIPROC_DIR is set (gunicorn.conf.py sets it), plus
coupon.observability.instruments and the scrape-time collectors the app passes in."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from typing import Protocol

from flask import Flask
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_flask_exporter import PrometheusMetrics
from prometheus_flask_exporter.multiprocess import GunicornInternalPrometheusMetrics


class ScrapeCollector(Protocol):
    """Computes its metrics when /metrics is asked (e.g. readiness checks), in that request's context."""

    def collect(self) -> Iterable[Metric]: ...


class _ScrapeCollectors:
    """The exporter's answer with the app's scrape-time collectors added. The registry is built per scrape in
    multiprocess mode, from the workers' files (as the exporter itself does); else it is the process' own."""

    scrape_collectors: Sequence[ScrapeCollector] = ()
    registry: CollectorRegistry

    def generate_metrics(self, accept_header: str | None = None, names: list[str] | None = None) -> tuple[str, str]:
        if names:
            return super().generate_metrics(accept_header, names)  # type: ignore[misc,no-any-return]
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            registry = CollectorRegistry()
            MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        else:
            registry = self.registry
        collectors = [registry, *self.scrape_collectors]

        class _All:
            def collect(self) -> Iterator[Metric]:
                for collector in collectors:
                    yield from collector.collect()

        encode, content_type = choose_encoder(accept_header or "")
        return encode(_All()).decode("utf-8"), content_type


class _Exporter(_ScrapeCollectors, PrometheusMetrics):  # type: ignore[misc]  # the exporter is untyped
    pass


class _GunicornExporter(_ScrapeCollectors, GunicornInternalPrometheusMetrics):  # type: ignore[misc]
    pass


_metrics: _Exporter | _GunicornExporter | None = None


def init_app(app: Flask, scrape_collectors: Sequence[ScrapeCollector] = ()) -> None:
    global _metrics
    if _metrics is None:
        exporter = _GunicornExporter if os.environ.get("PROMETHEUS_MULTIPROC_DIR") else _Exporter
        # The exporter serves /metrics; the per-request metrics are coupon.observability.http_metrics' (its hooks
        # cost 8 % of an issue request's API CPU, bench/profile.py).
        _metrics = exporter.for_app_factory(export_defaults=False)
    _metrics.scrape_collectors = scrape_collectors
    _metrics.init_app(app)
