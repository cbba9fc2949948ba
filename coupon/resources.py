"""The per-process resources (Redis client, gate, limiter, publisher, issue batcher, hasher, token key, live-stock
feed), built once per worker into one typed object on the app."""

from __future__ import annotations

import atexit
from dataclasses import dataclass
from functools import partial

from flask import Flask, current_app

from coupon import settings
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
from coupon.settings import Settings

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
    app.extensions[_EXTENSION] = build(settings.of(app))


def of(app: Flask) -> Resources:
    resources: Resources = app.extensions[_EXTENSION]
    return resources


def current() -> Resources:
    """This worker's resources (inside an app or request context)."""
    resources: Resources = current_app.extensions[_EXTENSION]
    return resources


def build(cfg: Settings) -> Resources:
    client = build_redis(cfg.redis_url, cfg.redis_cluster_url, cfg.redis_max_connections, cfg.redis_cluster_nodes)
    publisher = IssuePublisher(
        cfg.kafka_bootstrap_servers,
        cfg.kafka_issue_topic,
        delivery_timeout_ms=cfg.kafka_delivery_timeout_ms,
        linger_ms=cfg.kafka_linger_ms,
    )
    # The longest a caller can wait for its batch: the admission and gate round trips (the gate's run once more
    # after a timeout), each with a possible script reload and a wait for a pooled connection, the publish, and
    # the round trip that confirms or releases the holds. A hold older than that belongs to a finished request.
    queue_timeout = cfg.issue_queue_timeout_ms / 1000
    flush_timeout = 2 * (2 * SOCKET_TIMEOUT) + 2 * (2 * SOCKET_TIMEOUT) + publisher.max_wait_s + 2 * SOCKET_TIMEOUT + 1
    gate = Gate(
        client,
        adopt_after_ms=int((queue_timeout + flush_timeout) * 1000) + 1000,
        min_replica_acks=cfg.redis_min_replica_acks,
        replica_ack_timeout_ms=cfg.redis_replica_ack_timeout_ms,
    )
    # A gate found missing is rebuilt only once every reservation made before the loss is a record or has failed.
    recovery = GateRecovery(
        gate,
        IssueBacklog(cfg.kafka_bootstrap_servers, cfg.kafka_issue_topic, cfg.kafka_consumer_group),
        in_flight_ms=publisher.record_deadline_ms if cfg.gate_rebuild_wait_ms is None else cfg.gate_rebuild_wait_ms,
    )
    limiter = RateLimiter(
        client,
        user=Limit(cfg.rate_limit_user_requests, cfg.rate_limit_user_window_seconds),
        admin=Limit(cfg.rate_limit_admin_requests, cfg.rate_limit_admin_window_seconds),
        address=Limit(cfg.rate_limit_address_requests, cfg.rate_limit_address_window_seconds),
        login=Limit(cfg.login_max_attempts, cfg.login_attempt_window_seconds),
        # A deleted account's tokens are refused for as long as any of them can still be valid.
        deleted_marker_ttl_s=cfg.jwt_access_token_expires_seconds + 60,
    )
    # Group commit: the requests that arrive while a batch is in flight share the next rate-limit and gate round
    # trips and the next Kafka record.
    issuer: Coalescer[IssueTicket, GateDecision] = Coalescer(
        partial(decide_and_publish, limiter, gate, publisher),
        max_batch=cfg.issue_max_batch,
        max_in_flight=cfg.issue_max_in_flight,
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
        hasher=PasswordHasher(cfg.hash_threads, cfg.hash_max_queue, cfg.hash_nice),
        jwt_key=cfg.jwt_secret_key.get_secret_value().encode(),
        trusted_proxies=parse_trusted(cfg.trusted_proxies),
        # Live stock: one gate read per watched coupon per tick in this process, shared by all its streams.
        # Its pulse wakes idle streams for their heartbeats and deadlines: at least twice per heartbeat interval.
        stock_feed=StockFeed.for_redis(
            client, cfg.stock_stream_tick_ms / 1000, pulse_s=min(1.0, cfg.stock_stream_heartbeat_seconds / 2)
        ),
        stream_settings=StreamSettings(
            heartbeat_s=cfg.stock_stream_heartbeat_seconds,
            max_duration_s=cfg.stock_stream_max_seconds,
            retry_ms=cfg.stock_stream_retry_ms,
        ),
    )
