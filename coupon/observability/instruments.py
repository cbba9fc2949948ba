"""Prometheus metrics of the issue path and the consumer (prometheus_client; multiprocess-safe under gunicorn)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

# Every HTTP request, under the names and labels prometheus-flask-exporter gives them (the dashboard and the alerts read
# these), recorded by coupon.observability.http_metrics; the exporter's own per-request hooks are off.
HTTP_DURATION = Histogram(
    "flask_http_request_duration_seconds", "Flask HTTP request duration in seconds", ["method", "endpoint", "status"]
)
HTTP_TOTAL = Counter("flask_http_request_total", "Total number of HTTP requests", ["method", "status"])

_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

ISSUE_OUTCOMES = Counter(
    "coupon_issue_requests_total",
    "Issue requests by outcome: accepted, duplicate, sold_out, not_active, not_found, unavailable, rate_limited, "
    "account_deleted",
    ["outcome"],
)
ADMISSION_REFUSED = Counter(
    "coupon_admission_refused_total",
    "/api requests the rate limiter refused, by reason: rate_limited, account_deleted, token_revoked",
    ["reason"],
)
GATE_LATENCY = Histogram(
    "coupon_gate_batch_seconds", "One gate round trip (a pipeline of reserve.lua calls)", buckets=_LATENCY_BUCKETS
)
GATE_BATCH = Histogram(
    "coupon_gate_batch_size", "Requests decided per gate round trip", buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500)
)
PRODUCE_LATENCY = Histogram(
    "coupon_kafka_produce_seconds", "Send to broker ack of one record of accepted requests", buckets=_LATENCY_BUCKETS
)
PRODUCE_BATCH = Histogram(
    "coupon_kafka_record_events",
    "Accepted requests per Kafka record",
    buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000),
)

GATE_REBUILDS = Counter(
    "coupon_gate_rebuilds_total",
    "Requests that found a coupon's gate missing (Redis lost it, or it was retired), by result: waiting (503 E5031"
    " while what was in flight is waited out), rebuilt, ended (a finished sale: answered from the DB), failed"
    " (the issue topic could not be read)",
    ["result"],
)
STOCK_GUARD_REJECTIONS = Counter(
    "coupon_stock_guard_rejections_total",
    "Accepted requests the consumer's DB stock guard refused: a bug signal (the gate admitted more than the stock);"
    " every one was answered 202",
)

CONSUMED = Counter("coupon_consumer_messages_total", "Issue events read from Kafka")
PERSISTED = Counter(
    "coupon_consumer_rows_total",
    "What became of consumed events: inserted, duplicate, rejected, failed, cancelled (fenced by the sweeper)",
    ["result"],
)
UNDECODABLE = Counter("coupon_consumer_dlq_total", "Records parked in the DLQ")
BATCH_SIZE = Histogram(
    "coupon_consumer_batch_events", "Events per persisted batch", buckets=(1, 10, 50, 100, 250, 500, 1000, 2000, 5000)
)
REJOINS = Counter(
    "coupon_consumer_rejoins_total", "Kafka consumers closed and joined anew after a rebalance that did not complete"
)
PERSIST_LATENCY = Histogram(
    "coupon_consumer_persist_seconds", "Persisting one batch (locks + DB transaction)", buckets=_LATENCY_BUCKETS
)
LAG = Gauge("coupon_consumer_lag", "Records behind the log end, per partition", ["partition"], multiprocess_mode="max")

# Live stock (GET /api/coupon/{id}/stock/stream): each API worker reads a watched coupon's gate once per tick,
# however many streams it serves; reads per second here stay at workers x watched coupons / tick.
STOCK_FEED_READS = Counter(
    "coupon_stock_feed_reads_total",
    "Gate reads of the live-stock feed (one pipeline per watched coupon per tick per API worker), by result: ok,"
    " missing (no gate meta), error (the tick was skipped)",
    ["result"],
)
STOCK_STREAMS = Gauge("coupon_stock_streams", "Open live-stock streams (SSE)", multiprocess_mode="livesum")

# Logins and signups the hashing queue refused at once (503 E5035): the queue of one API worker was full.
HASH_REFUSED = Counter(
    "coupon_hash_refused_total", "Signups and logins refused at once because the password-hashing queue was full"
)

# The periodic rq jobs (workers.jobs), counted in the rq worker that runs them (RQ_WORKER_METRICS_PORT). Labelled
# `task`: a `job` label would clash with the one Prometheus gives every target.
JOB_RUNS = Counter(
    "coupon_periodic_job_runs_total",
    "Runs of a periodic job, by task (republish, settle) and result: ok, error",
    ["task", "result"],
)
JOB_LAST_SUCCESS = Gauge(
    "coupon_periodic_job_last_success_timestamp_seconds",
    "Unix time a periodic job last finished without an error (the rq worker's start until it has), by task",
    ["task"],
    multiprocess_mode="max",
)
SWEEPER_SETTLED = Counter(
    "coupon_sweeper_settled_total",
    "Unconfirmed reservations the sweeper settled, by outcome: issued, failure-record, rejected, fenced",
    ["outcome"],
)
