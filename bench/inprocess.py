"""CPU per request of the Flask app itself, no HTTP server: GET /health against POST /issue, in one process.

    python -m bench.inprocess [--mode full|gate|noop] [--seconds 4] [--concurrency 50]

`full` runs the real batch (gate + Kafka); `gate` publishes nothing; `noop` decides every request without Redis
or Kafka, so the three together split the issue path's cost into request handling, gate and Kafka. Concurrent
greenlets call the WSGI app directly, as gunicorn's gevent worker would, so batching works as in production.
Needs the local services (make services); uses Redis db 3 and a topic of its own.
"""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import argparse
import io
import os
import resource
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import gevent

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="coupon-inprocess-"))

from coupon import (
    create_app,
    resources,
)
from coupon.adapters.gate import GateDecision, GateMeta, GateOutcome
from coupon.adapters.kafka_topics import ensure_topics
from coupon.http.minting import user_token
from coupon.services.issuing import decide_and_publish

KAFKA = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
REDIS_URL = os.environ.get("INPROCESS_REDIS_URL", "redis://127.0.0.1:6379/3")


class _NoKafka:
    def publish_events(self, events: list[Any], decided_at: float | None = None) -> None:
        return None


def _environ(method: str, path: str, token: str | None = None) -> dict[str, Any]:
    env = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "SCRIPT_NAME": "",
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(b""),
        "wsgi.errors": sys.stderr,
        "wsgi.version": (1, 0),
        "wsgi.multithread": False,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
        "REMOTE_ADDR": "127.0.0.1",
        "CONTENT_LENGTH": "0",
        "HTTP_HOST": "127.0.0.1:8000",
    }
    if token:
        env["HTTP_AUTHORIZATION"] = "Bearer " + token
    return env


def _run(app: Any, make_env: Callable[[], dict[str, Any]], seconds: float, concurrency: int) -> tuple[int, float, dict]:
    statuses: dict[str, int] = {}

    def start_response(status: str, headers: list, exc_info: Any = None) -> None:
        statuses[status] = statuses.get(status, 0) + 1

    stop = time.monotonic() + seconds
    done = [0]

    def loop() -> None:
        while time.monotonic() < stop:
            b"".join(app(make_env(), start_response))
            done[0] += 1

    before = resource.getrusage(resource.RUSAGE_SELF)
    gevent.joinall([gevent.spawn(loop) for _ in range(concurrency)])
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return done[0], 1e6 * cpu / max(done[0], 1), statuses


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mode", choices=("full", "gate", "noop"), default="full")
    ap.add_argument("--seconds", type=float, default=4)
    ap.add_argument("--concurrency", type=int, default=50)
    ap.add_argument("--tokens", type=int, default=60_000)
    args = ap.parse_args()
    topic = f"bench.inprocess.{uuid.uuid4().hex[:8]}"
    ensure_topics(KAFKA, {topic: 6})
    app = create_app(
        {"APP_ENV": "test", "REDIS_URL": REDIS_URL, "KAFKA_ISSUE_TOPIC": topic, "KAFKA_BOOTSTRAP_SERVERS": KAFKA}
    )
    coupon_id = str(uuid.uuid4())
    with app.app_context():
        resources.of(app).gate.write_meta(coupon_id, GateMeta(10**8, 0, 4102444800000, "ACTIVE"))
        tokens = [user_token(str(uuid.uuid4())) for _ in range(args.tokens)]
    resources.of(app).publisher.warm_up()
    issuer = resources.of(app).issuer
    if args.mode == "noop":
        issuer._flush = lambda items: [GateDecision(GateOutcome.ACCEPTED, 1) for _ in items]
    elif args.mode == "gate":
        issuer._flush = partial(decide_and_publish, resources.of(app).limiter, resources.of(app).gate, _NoKafka())
    n, health_us, statuses = _run(app, lambda: _environ("GET", "/health"), args.seconds, args.concurrency)
    print(f"health: {n} requests, {health_us:.1f} µs CPU per request, {statuses}")
    it = iter(range(10**9))
    path = f"/api/coupon/{coupon_id}/issue"
    n, issue_us, statuses = _run(
        app, lambda: _environ("POST", path, tokens[next(it) % len(tokens)]), args.seconds, args.concurrency
    )
    print(f"issue ({args.mode}): {n} requests, {issue_us:.1f} µs CPU per request, {statuses}")
    print(f"issue - health: {issue_us - health_us:.1f} µs")


if __name__ == "__main__":
    main()
