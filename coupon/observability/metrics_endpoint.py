"""GET /metrics: request counts and latency per endpoint (prometheus-flask-exporter), aggregated over the
gunicorn workers when PROMETHEUS_MULTIPROC_DIR is set (gunicorn.conf.py sets it), plus
coupon.observability.instruments."""

from __future__ import annotations

import os

from flask import Flask
from prometheus_flask_exporter import PrometheusMetrics

_metrics: PrometheusMetrics | None = None


def init_app(app: Flask) -> None:
    global _metrics
    if _metrics is None:
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            from prometheus_flask_exporter.multiprocess import GunicornInternalPrometheusMetrics

            _metrics = GunicornInternalPrometheusMetrics.for_app_factory(group_by="endpoint")
        else:
            _metrics = PrometheusMetrics.for_app_factory(group_by="endpoint")
    # Label by endpoint, not path: a path per coupon id would grow without bound.
    _metrics.init_app(app)
