"""Configuration read from the environment, with documented defaults for the local stack."""

from __future__ import annotations

import os
from typing import Any

from coupon.domain.client_address import parse_trusted

DEV_JWT_SECRET = "dev-only-secret-change-me-0123456789abcdef"


def _env(name: str, default: str) -> str:
    return os.environ.get(name, default)


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise RuntimeError(f"{name} must be an integer, got {raw!r}") from exc


def load_config(overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Build the Flask config dict: environment first, then explicit overrides (tests)."""
    env = _env("APP_ENV", "dev")
    cfg: dict[str, Any] = {
        "APP_ENV": env,
        "SQLALCHEMY_DATABASE_URI": _env("DATABASE_URL", "mysql+pymysql://coupon:coupon@127.0.0.1:3306/coupon"),
        "SQLALCHEMY_ENGINE_OPTIONS": {
            "pool_pre_ping": True,
            "pool_recycle": 1800,
            "pool_size": _int("DB_POOL_SIZE", 10),
            "max_overflow": _int("DB_POOL_OVERFLOW", 20),
            "pool_timeout": 5,
            "connect_args": {"connect_timeout": 3, "read_timeout": 10, "write_timeout": 10},
        },
        "SQLALCHEMY_TRACK_MODIFICATIONS": False,
        "REDIS_URL": _env("REDIS_URL", "redis://127.0.0.1:6379/0"),
        "REDIS_CLUSTER_URL": _env("REDIS_CLUSTER_URL", ""),
        # host:port,host:port — an alternative to REDIS_CLUSTER_URL; either one switches to Redis Cluster.
        "REDIS_CLUSTER_NODES": _env("REDIS_CLUSTER_NODES", ""),
        "REDIS_MAX_CONNECTIONS": _int("REDIS_MAX_CONNECTIONS", 64),
        # Replicas that must hold a batch's reservations (WAIT, in the gate's own round trip) before they are
        # published: 1 with Redis Cluster replicas or a primary + replica, so a promoted replica forgets nothing
        # anyone was promised. 0 (the default, a single node): no WAIT. Too few in time: 503 E5034, nothing published.
        "REDIS_MIN_REPLICA_ACKS": _int("REDIS_MIN_REPLICA_ACKS", 0),
        "REDIS_REPLICA_ACK_TIMEOUT_MS": _int("REDIS_REPLICA_ACK_TIMEOUT_MS", 100),
        "RQ_REDIS_URL": _env("RQ_REDIS_URL", _env("REDIS_URL", "redis://127.0.0.1:6379/0")),
        "KAFKA_BOOTSTRAP_SERVERS": _env("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092"),
        "KAFKA_ISSUE_TOPIC": _env("KAFKA_ISSUE_TOPIC", "coupon.issue"),
        "KAFKA_DLQ_TOPIC": _env("KAFKA_DLQ_TOPIC", "coupon.issue.dlq"),
        "KAFKA_CONSUMER_GROUP": _env("KAFKA_CONSUMER_GROUP", "coupon-issuer"),
        "KAFKA_PARTITIONS": _int("KAFKA_PARTITIONS", 6),
        # `flask create-topics` creates both topics with this replication factor and topic config
        # min.insync.replicas (acks=all then needs that many in-sync copies): 1/1 on the single dev broker,
        # 3/2 on a three-broker cluster (scripts/kafka_cluster.sh, docker compose --profile ha).
        "KAFKA_REPLICATION_FACTOR": _int("KAFKA_REPLICATION_FACTOR", 1),
        "KAFKA_MIN_INSYNC_REPLICAS": _int("KAFKA_MIN_INSYNC_REPLICAS", 1),
        # The API waits this long for the broker's ack before releasing the reservation (503).
        "KAFKA_DELIVERY_TIMEOUT_MS": _int("KAFKA_DELIVERY_TIMEOUT_MS", 5000),
        "KAFKA_LINGER_MS": _int("KAFKA_LINGER_MS", 0),
        # How long a gate found missing (Redis lost it) refuses requests (503 E5031) before it is rebuilt: the longest
        # a reservation made before the loss can take to become a Kafka record. Unset: the publisher's own bound,
        # 1 s + KAFKA_DELIVERY_TIMEOUT_MS + 1 s. Shorter is unsafe while any API may still be publishing; 0 suits
        # only a stack with nothing in flight (most of the test suite).
        "GATE_REBUILD_WAIT_MS": _int("GATE_REBUILD_WAIT_MS", -1),
        # How long an issue request may wait behind the worker's earlier batches before it is refused unsent (503,
        # nothing reserved): the worker's load-shedding bound. Unset or 0: KAFKA_DELIVERY_TIMEOUT_MS (set below).
        "ISSUE_QUEUE_TIMEOUT_MS": _int("ISSUE_QUEUE_TIMEOUT_MS", 0),
        "ISSUE_MAX_BATCH": _int("ISSUE_MAX_BATCH", 1000),
        "ISSUE_MAX_IN_FLIGHT": _int("ISSUE_MAX_IN_FLIGHT", 1),
        "JWT_SECRET_KEY": os.environ.get("JWT_SECRET_KEY", ""),
        "JWT_ACCESS_TOKEN_EXPIRES_SECONDS": _int("JWT_ACCESS_TOKEN_EXPIRES_SECONDS", 3600),
        # Each refresh token is single use; rotating it gives a new one with this lifetime (default 14 days).
        "JWT_REFRESH_TOKEN_EXPIRES_SECONDS": _int("JWT_REFRESH_TOKEN_EXPIRES_SECONDS", 14 * 24 * 3600),
        "MAX_CONTENT_LENGTH": _int("MAX_CONTENT_LENGTH", 16 * 1024),
        "FAILURE_MAX_RETRIES": _int("FAILURE_MAX_RETRIES", 5),
        "REPUBLISH_INTERVAL_SECONDS": _int("REPUBLISH_INTERVAL_SECONDS", 10),
        "CONSUMER_BATCH_SIZE": _int("CONSUMER_BATCH_SIZE", 1000),
        # Behind a backlog each full poll doubles the next one's records, up to this many (back to the base as it
        # catches up): fewer, bigger batches cost less per row while it drains.
        "CONSUMER_BATCH_SIZE_MAX": _int("CONSUMER_BATCH_SIZE_MAX", 8000),
        # How long a fetch waits for 64 KB of records: how often an idle consumer (and the broker) wake up, and the
        # most a lone request's row waits for its fetch.
        "CONSUMER_FETCH_MAX_WAIT_MS": _int("CONSUMER_FETCH_MAX_WAIT_MS", 500),
        # What a fetch waits for before CONSUMER_FETCH_MAX_WAIT_MS is up. 64 KB fills at once in a sale; 1 answers
        # as soon as any record is there (the tests: their rows land at once, while the consumer stays idle).
        "CONSUMER_FETCH_MIN_BYTES": _int("CONSUMER_FETCH_MIN_BYTES", 64 * 1024),
        # The sweeper settles reservations nobody confirmed (503 E5034, a worker killed mid-request) once they are
        # this old and the consumers have drained the topic (waiting at most SETTLE_LAG_WAIT_SECONDS for them).
        "SETTLE_AFTER_SECONDS": _int("SETTLE_AFTER_SECONDS", 30),
        "SETTLE_INTERVAL_SECONDS": _int("SETTLE_INTERVAL_SECONDS", 10),
        "SETTLE_LAG_WAIT_SECONDS": _int("SETTLE_LAG_WAIT_SECONDS", 10),
        # Events per DB transaction: a poll of up to CONSUMER_BATCH_SIZE records, each up to 10,000 events, is
        # persisted in chunks of this many, so one INSERT stays far below max_allowed_packet.
        "CONSUMER_CHUNK_EVENTS": _int("CONSUMER_CHUNK_EVENTS", 2000),
        # Password hashing (signup, login) per API worker: this many native threads, each hash ~100 ms of CPU.
        # With one worker per core, one thread each already lets hashing fill every core; the threads run at
        # HASH_NICE (a lower OS priority) so the issue path of the same box wins the CPU when both want it.
        "HASH_THREADS": _int("HASH_THREADS", 1),
        # At most this many signups/logins per worker hash or wait for a thread; one more gets 503 E5035 with
        # Retry-After at once (the wait behind a full queue is about HASH_MAX_QUEUE x 80 ms / HASH_THREADS).
        "HASH_MAX_QUEUE": _int("HASH_MAX_QUEUE", 32),
        "HASH_NICE": _int("HASH_NICE", 10),
        "API_PORT": _int("API_PORT", 8000),
        # The consumer lowers its own OS priority by this much (0-19): beside the API on one host, a drain then takes
        # only the CPU the requests leave; its lag can wait seconds, their replies cannot. 19 beat 10 in five
        # alternating bench runs (open-loop p99 while draining 30-36 ms against 44-45; bench/RESULTS.md).
        "CONSUMER_NICE": _int("CONSUMER_NICE", 19),
        "CONSUMER_METRICS_PORT": _int("CONSUMER_METRICS_PORT", 0),
        "CONSUMER_METRICS_HOST": _env("CONSUMER_METRICS_HOST", "127.0.0.1"),
        # The rq worker's /metrics (periodic jobs, sweeper outcomes, the group's lag as Kafka sees it); 0 = off.
        "RQ_WORKER_METRICS_PORT": _int("RQ_WORKER_METRICS_PORT", 0),
        "RQ_WORKER_METRICS_HOST": _env("RQ_WORKER_METRICS_HOST", "127.0.0.1"),
        # Rate limits (Redis, fixed windows; 0 requests = off). Per user: every authenticated /api call.
        "RATE_LIMIT_USER_REQUESTS": _int("RATE_LIMIT_USER_REQUESTS", 60),
        "RATE_LIMIT_USER_WINDOW_SECONDS": _int("RATE_LIMIT_USER_WINDOW_SECONDS", 10),
        # Per admin token, instead of the user limit: a dashboard polling a live sale makes many calls a second.
        "RATE_LIMIT_ADMIN_REQUESTS": _int("RATE_LIMIT_ADMIN_REQUESTS", 600),
        "RATE_LIMIT_ADMIN_WINDOW_SECONDS": _int("RATE_LIMIT_ADMIN_WINDOW_SECONDS", 10),
        # Per client address, every /api call: off by default (load runs and tests come from one address);
        # production behind a proxy sets it together with TRUSTED_PROXIES.
        "RATE_LIMIT_ADDRESS_REQUESTS": _int("RATE_LIMIT_ADDRESS_REQUESTS", 0),
        "RATE_LIMIT_ADDRESS_WINDOW_SECONDS": _int("RATE_LIMIT_ADDRESS_WINDOW_SECONDS", 10),
        "LOGIN_MAX_ATTEMPTS": _int("LOGIN_MAX_ATTEMPTS", 5),
        "LOGIN_ATTEMPT_WINDOW_SECONDS": _int("LOGIN_ATTEMPT_WINDOW_SECONDS", 300),
        # Proxies whose X-Forwarded-For is believed (comma-separated addresses or CIDRs); empty = none.
        "TRUSTED_PROXIES": _env("TRUSTED_PROXIES", ""),
        # Live stock (GET /api/coupon/{id}/stock/stream, SSE): each API worker reads a watched coupon's gate once per
        # tick and sends its streams only what changed; a comment line after each quiet heartbeat interval; a stream
        # ends after at most STOCK_STREAM_MAX_SECONDS (90-100 % of it, spread) and the client reconnects after the
        # retry delay with its Last-Event-ID.
        "STOCK_STREAM_TICK_MS": _int("STOCK_STREAM_TICK_MS", 250),
        "STOCK_STREAM_HEARTBEAT_SECONDS": _int("STOCK_STREAM_HEARTBEAT_SECONDS", 15),
        "STOCK_STREAM_MAX_SECONDS": _int("STOCK_STREAM_MAX_SECONDS", 300),
        "STOCK_STREAM_RETRY_MS": _int("STOCK_STREAM_RETRY_MS", 2000),
    }
    if overrides:
        cfg.update(overrides)
    # After the overrides: a delivery timeout given there is followed too.
    cfg["ISSUE_QUEUE_TIMEOUT_MS"] = cfg["ISSUE_QUEUE_TIMEOUT_MS"] or cfg["KAFKA_DELIVERY_TIMEOUT_MS"]
    for name in (
        "REDIS_MIN_REPLICA_ACKS",
        "RATE_LIMIT_USER_REQUESTS",
        "RATE_LIMIT_USER_WINDOW_SECONDS",
        "RATE_LIMIT_ADMIN_REQUESTS",
        "RATE_LIMIT_ADMIN_WINDOW_SECONDS",
        "RATE_LIMIT_ADDRESS_REQUESTS",
        "RATE_LIMIT_ADDRESS_WINDOW_SECONDS",
        "LOGIN_MAX_ATTEMPTS",
        "LOGIN_ATTEMPT_WINDOW_SECONDS",
    ):
        if cfg[name] < 0:
            raise RuntimeError(f"{name} must be 0 (off) or more, got {cfg[name]}")
    for name in (
        "CONSUMER_BATCH_SIZE",
        "CONSUMER_BATCH_SIZE_MAX",
        "CONSUMER_FETCH_MAX_WAIT_MS",
        "CONSUMER_FETCH_MIN_BYTES",
        "CONSUMER_CHUNK_EVENTS",
        "JWT_ACCESS_TOKEN_EXPIRES_SECONDS",
        "JWT_REFRESH_TOKEN_EXPIRES_SECONDS",
        "HASH_THREADS",
        "HASH_MAX_QUEUE",
        "STOCK_STREAM_HEARTBEAT_SECONDS",
        "STOCK_STREAM_MAX_SECONDS",
        "KAFKA_PARTITIONS",
        "KAFKA_REPLICATION_FACTOR",
        "KAFKA_MIN_INSYNC_REPLICAS",
        "ISSUE_QUEUE_TIMEOUT_MS",
        "REDIS_REPLICA_ACK_TIMEOUT_MS",
    ):
        if cfg[name] < 1:
            raise RuntimeError(f"{name} must be at least 1, got {cfg[name]}")
    if cfg["GATE_REBUILD_WAIT_MS"] < -1:
        raise RuntimeError(
            f"GATE_REBUILD_WAIT_MS must be 0 or more (unset: the publisher's bound), got {cfg['GATE_REBUILD_WAIT_MS']}"
        )
    if cfg["STOCK_STREAM_TICK_MS"] < 10:
        raise RuntimeError(f"STOCK_STREAM_TICK_MS must be at least 10, got {cfg['STOCK_STREAM_TICK_MS']}")
    if cfg["STOCK_STREAM_RETRY_MS"] < 0:
        raise RuntimeError(f"STOCK_STREAM_RETRY_MS must be 0 or more, got {cfg['STOCK_STREAM_RETRY_MS']}")
    if cfg["KAFKA_MIN_INSYNC_REPLICAS"] > cfg["KAFKA_REPLICATION_FACTOR"]:
        raise RuntimeError(
            f"KAFKA_MIN_INSYNC_REPLICAS ({cfg['KAFKA_MIN_INSYNC_REPLICAS']}) can't exceed KAFKA_REPLICATION_FACTOR"
            f" ({cfg['KAFKA_REPLICATION_FACTOR']}): no acks=all write could ever succeed"
        )
    parse_trusted(cfg["TRUSTED_PROXIES"])  # a bad entry stops the start-up rather than trusting too much
    _check_secrets(cfg)
    return cfg


def _check_secrets(cfg: dict[str, Any]) -> None:
    """Dev and test get a documented default secret; anything else must bring its own."""
    secret = cfg.get("JWT_SECRET_KEY") or ""
    if cfg["APP_ENV"] in ("dev", "test"):
        if not secret:
            cfg["JWT_SECRET_KEY"] = DEV_JWT_SECRET
        return
    if not secret or secret == DEV_JWT_SECRET or len(secret) < 32:
        raise RuntimeError(
            "JWT_SECRET_KEY must be set to a random value of at least 32 characters "
            f"when APP_ENV={cfg['APP_ENV']!r} (dev/test use a built-in default)"
        )
    if "coupon:coupon@" in cfg["SQLALCHEMY_DATABASE_URI"]:
        raise RuntimeError(f"DATABASE_URL uses the dev default credentials in APP_ENV={cfg['APP_ENV']!r}")
    # Brute-force protection of the login can't be switched off in production.
    if cfg["LOGIN_MAX_ATTEMPTS"] <= 0 or cfg["LOGIN_ATTEMPT_WINDOW_SECONDS"] <= 0:
        raise RuntimeError(
            f"LOGIN_MAX_ATTEMPTS and LOGIN_ATTEMPT_WINDOW_SECONDS must be > 0 in APP_ENV={cfg['APP_ENV']!r}"
        )
