"""Per-process resources (Redis gate, Kafka publisher), built once per worker and put on app.extensions."""
from __future__ import annotations

import atexit

from flask import Flask

from coupon.adapters.gate import Gate
from coupon.adapters.kafka_publisher import IssuePublisher
from coupon.adapters.redis_client import build_redis


def init_app(app: Flask) -> None:
    cfg = app.config
    client = build_redis(cfg["REDIS_URL"], cfg["REDIS_CLUSTER_URL"], cfg["REDIS_MAX_CONNECTIONS"],
                         cfg["REDIS_CLUSTER_NODES"])
    app.extensions["coupon.redis"] = client
    app.extensions["coupon.gate"] = Gate(client)
    publisher = IssuePublisher(
        cfg["KAFKA_BOOTSTRAP_SERVERS"],
        cfg["KAFKA_ISSUE_TOPIC"],
        delivery_timeout_ms=cfg["KAFKA_DELIVERY_TIMEOUT_MS"],
        linger_ms=cfg["KAFKA_LINGER_MS"],
    )
    app.extensions["coupon.publisher"] = publisher
    # Flush what is buffered when a worker exits, so no acked-by-us-but-unsent record exists.
    atexit.register(publisher.close)
