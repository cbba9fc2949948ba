"""Request count and latency of every HTTP request, by endpoint, method and status: the exporter's two default
metrics, recorded with each label set's children looked up once per process instead of on every request."""

from __future__ import annotations

from time import perf_counter

from flask import Flask, Response, request
from prometheus_client import Counter, Histogram

from coupon.observability.instruments import HTTP_DURATION, HTTP_TOTAL

_STARTED = "coupon.metrics.started"
# (endpoint, method, status) -> (its histogram child, its counter child). Bounded as the series are: by the routes,
# the methods Werkzeug accepts and the statuses the app answers.
_children: dict[tuple[str | None, str, int], tuple[Histogram, Counter]] = {}


def init_app(app: Flask) -> None:
    app.before_request_funcs.setdefault(None, []).insert(0, _start)
    app.after_request(_record)


def _start() -> None:
    request.environ[_STARTED] = perf_counter()


def _record(response: Response) -> Response:
    started = request.environ.get(_STARTED)
    if started is None:  # a request that failed before its hooks ran is answered, not measured
        return response
    record(request.endpoint, request.method, response.status_code, started)
    return response


def record(endpoint: str | None, method: str, status: int, started: float) -> None:
    """One request answered with `status`, `started` at that perf_counter() reading."""
    key = (endpoint, method, status)
    pair = _children.get(key)
    if pair is None:
        label = str(status)
        pair = _children[key] = (HTTP_DURATION.labels(method, str(endpoint), label), HTTP_TOTAL.labels(method, label))
    duration, total = pair
    duration.observe(max(perf_counter() - started, 0.0))
    total.inc()
