"""Per-process resources (Redis gate, Kafka publisher), built once per worker and put on app.extensions."""
from __future__ import annotations

import atexit

from flask import Flask

from coupon.adapters.gate import Gate
from coupon.adapters.kafka_publisher import IssuePublisher
from coupon.adapters.rate_limit import Limit, RateLimiter
from coupon.adapters.redis_client import build_redis


def init_app(app: Flask) -> None:
    cfg = app.config
    client = build_redis(cfg["REDIS_URL"], cfg["REDIS_CLUSTER_URL"], cfg["REDIS_MAX_CONNECTIONS"])
    app.extensions["coupon.redis"] = client
    app.extensions["coupon.gate"] = Gate(client)
    app.extensions["coupon.limiter"] = RateLimiter(
        client,
        user=Limit(cfg["RATE_LIMIT_USER_REQUESTS"], cfg["RATE_LIMIT_USER_WINDOW_SECONDS"]),
        address=Limit(cfg["RATE_LIMIT_ADDRESS_REQUESTS"], cfg["RATE_LIMIT_ADDRESS_WINDOW_SECONDS"]),
        login=Limit(cfg["LOGIN_MAX_ATTEMPTS"], cfg["LOGIN_ATTEMPT_WINDOW_SECONDS"]),
        # A deleted account's tokens are refused for as long as any of them can still be valid.
        deleted_marker_ttl_s=cfg["JWT_ACCESS_TOKEN_EXPIRES_SECONDS"] + 60,
    )
    publisher = IssuePublisher(
        cfg["KAFKA_BOOTSTRAP_SERVERS"],
        cfg["KAFKA_ISSUE_TOPIC"],
        delivery_timeout_ms=cfg["KAFKA_DELIVERY_TIMEOUT_MS"],
        linger_ms=cfg["KAFKA_LINGER_MS"],
    )
    app.extensions["coupon.publisher"] = publisher
    # Flush what is buffered when a worker exits, so no acked-by-us-but-unsent record exists.
    atexit.register(publisher.close)
