"""The per-process resources (Redis client, gate, limiter, publisher, issue batcher, hasher, token key, live-stock
feed), built once per worker into one typed object on the app."""

from __future__ import annotations

import atexit
from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

from flask import Flask, current_app

from coupon.adapters.coalescer import Coalescer
from coupon.adapters.gate import Gate, GateDecision
from coupon.adapters.hasher import PasswordHasher
from coupon.adapters.kafka_backlog import IssueBacklog
from coupon.adapters.kafka_publisher import IssuePublisher
from coupon.adapters.rate_limit import Limit, RateLimiter
from coupon.adapters.redis_client import SOCKET_TIMEOUT, RedisClient, build_redis
from coupon.adapters.stock_feed import StockFeed
from coupon.domain.client_address import Network, parse_trusted
from coupon.services.gate_recovery import GateRecovery
from coupon.services.issuing import IssueBatcher, IssueTicket, decide_and_publish
from coupon.services.stock_watch import StreamSettings

_EXTENSION = "coupon"


@dataclass(frozen=True, slots=True)
class Resources:
    redis: RedisClient
    gate: Gate
    recovery: GateRecovery
    limiter: RateLimiter
    publisher: IssuePublisher
    issuer: IssueBatcher
    hasher: PasswordHasher
    jwt_key: bytes
    trusted_proxies: tuple[Network, ...]
    stock_feed: StockFeed
    stream_settings: StreamSettings


def init_app(app: Flask) -> None:
    app.extensions[_EXTENSION] = build(app.config)


def of(app: Flask) -> Resources:
    resources: Resources = app.extensions[_EXTENSION]
    return resources


def current() -> Resources:
    """This worker's resources (inside an app or request context)."""
    resources: Resources = current_app.extensions[_EXTENSION]
    return resources


def build(cfg: Mapping[str, Any]) -> Resources:
    client = build_redis(
        cfg["REDIS_URL"], cfg["REDIS_CLUSTER_URL"], cfg["REDIS_MAX_CONNECTIONS"], cfg["REDIS_CLUSTER_NODES"]
    )
    publisher = IssuePublisher(
        cfg["KAFKA_BOOTSTRAP_SERVERS"],
        cfg["KAFKA_ISSUE_TOPIC"],
        delivery_timeout_ms=cfg["KAFKA_DELIVERY_TIMEOUT_MS"],
        linger_ms=cfg["KAFKA_LINGER_MS"],
    )
    # The longest a caller can wait for its batch: the admission and gate round trips (the gate's run once more
    # after a timeout), each with a possible script reload and a wait for a pooled connection, the publish, and
    # the round trip that confirms or releases the holds. A hold older than that belongs to a finished request.
    queue_timeout = cfg["ISSUE_QUEUE_TIMEOUT_MS"] / 1000
    flush_timeout = 2 * (2 * SOCKET_TIMEOUT) + 2 * (2 * SOCKET_TIMEOUT) + publisher.max_wait_s + 2 * SOCKET_TIMEOUT + 1
    gate = Gate(
        client,
        adopt_after_ms=int((queue_timeout + flush_timeout) * 1000) + 1000,
        min_replica_acks=cfg["REDIS_MIN_REPLICA_ACKS"],
        replica_ack_timeout_ms=cfg["REDIS_REPLICA_ACK_TIMEOUT_MS"],
    )
    # A gate found missing is rebuilt only once every reservation made before the loss is a record or has failed.
    recovery = GateRecovery(
        gate,
        IssueBacklog(cfg["KAFKA_BOOTSTRAP_SERVERS"], cfg["KAFKA_ISSUE_TOPIC"], cfg["KAFKA_CONSUMER_GROUP"]),
        in_flight_ms=publisher.record_deadline_ms if cfg["GATE_REBUILD_WAIT_MS"] < 0 else cfg["GATE_REBUILD_WAIT_MS"],
    )
    limiter = RateLimiter(
        client,
        user=Limit(cfg["RATE_LIMIT_USER_REQUESTS"], cfg["RATE_LIMIT_USER_WINDOW_SECONDS"]),
        admin=Limit(cfg["RATE_LIMIT_ADMIN_REQUESTS"], cfg["RATE_LIMIT_ADMIN_WINDOW_SECONDS"]),
        address=Limit(cfg["RATE_LIMIT_ADDRESS_REQUESTS"], cfg["RATE_LIMIT_ADDRESS_WINDOW_SECONDS"]),
        login=Limit(cfg["LOGIN_MAX_ATTEMPTS"], cfg["LOGIN_ATTEMPT_WINDOW_SECONDS"]),
        # A deleted account's tokens are refused for as long as any of them can still be valid.
        deleted_marker_ttl_s=cfg["JWT_ACCESS_TOKEN_EXPIRES_SECONDS"] + 60,
    )
    # Group commit: the requests that arrive while a batch is in flight share the next rate-limit and gate round
    # trips and the next Kafka record.
    issuer: Coalescer[IssueTicket, GateDecision] = Coalescer(
        partial(decide_and_publish, limiter, gate, publisher),
        max_batch=cfg["ISSUE_MAX_BATCH"],
        max_in_flight=cfg["ISSUE_MAX_IN_FLIGHT"],
        queue_timeout=queue_timeout,
        flush_timeout=flush_timeout,
    )
    # Flush what is buffered when a worker exits, so no acked-by-us-but-unsent record exists.
    atexit.register(publisher.close)
    return Resources(
        redis=client,
        gate=gate,
        recovery=recovery,
        limiter=limiter,
        publisher=publisher,
        issuer=issuer,
        # Signup and login hash here, in native threads (gevent workers) behind a bounded queue, never on the hub.
        hasher=PasswordHasher(cfg["HASH_THREADS"], cfg["HASH_MAX_QUEUE"], cfg["HASH_NICE"]),
        jwt_key=cfg["JWT_SECRET_KEY"].encode(),
        trusted_proxies=parse_trusted(cfg["TRUSTED_PROXIES"]),
        # Live stock: one gate read per watched coupon per tick in this process, shared by all its streams.
        # Its pulse wakes idle streams for their heartbeats and deadlines: at least twice per heartbeat interval.
        stock_feed=StockFeed.for_redis(
            client, cfg["STOCK_STREAM_TICK_MS"] / 1000, pulse_s=min(1.0, cfg["STOCK_STREAM_HEARTBEAT_SECONDS"] / 2)
        ),
        stream_settings=StreamSettings(
            heartbeat_s=cfg["STOCK_STREAM_HEARTBEAT_SECONDS"],
            max_duration_s=cfg["STOCK_STREAM_MAX_SECONDS"],
            retry_ms=cfg["STOCK_STREAM_RETRY_MS"],
        ),
    )
