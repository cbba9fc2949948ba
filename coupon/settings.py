"""Typed settings, read once from the environment (docs/CONFIGURATION.md's table is generated from them)."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any, Literal

from flask import Flask, current_app
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from coupon.domain.client_address import parse_trusted

# A pydantic model, not pydantic-settings: every field is a scalar named as its variable, so reading the environment
# is one dict comprehension (load_settings), and pydantic-settings' import (0.07 s of every process start, measured
# with `python -X importtime`) bought nothing here. pydantic itself is imported by the HTTP schemas anyway; building
# this class costs ~0.05 s, paid for bounds, defaults and docs/CONFIGURATION.md's table from one declaration.

DEV_JWT_SECRET = "dev-only-secret-change-me-0123456789abcdef"
_EXTENSION = "coupon.settings"
_DEV_ENVS = ("dev", "test")

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]


def _doc(default: str | None = None, bounds: str | None = None) -> dict[str, Any]:
    """Doc-table hints for a field whose default or bounds aren't literal values (the generator shows these)."""
    extra: dict[str, Any] = {}
    if default is not None:
        extra["doc_default"] = default
    if bounds is not None:
        extra["doc_bounds"] = bounds
    return extra


# Host:port lists (Kafka brokers, Redis Cluster nodes): an IPv6 host goes in brackets.
_HOST_PORT = r"(\[[0-9A-Fa-f:.]+\]|[^\s,:\[\]]+):[0-9]{1,5}"
_HOST_PORTS = rf"^\s*{_HOST_PORT}(\s*,\s*{_HOST_PORT})*\s*$"
_TOPIC = r"^[A-Za-z0-9._-]{1,249}$"


class Settings(BaseModel):
    """Every setting of the app: environment variable = field name in upper case; bounds checked at start-up."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    app_env: str = Field(
        "dev",
        pattern=r"^[A-Za-z0-9_.-]{1,32}$",
        description="`dev` / `test` allow the built-in secret; anything else (e.g. `production`) enforces the secret"
        " checks above",
        json_schema_extra=_doc(bounds="a name: letters, digits, `_.-`"),
    )
    database_url: str = Field(
        "mysql+pymysql://coupon:coupon@127.0.0.1:3306/coupon",
        pattern=r"^[a-z][a-z0-9+]*://",
        description="SQLAlchemy URL of MariaDB/MySQL",
        json_schema_extra=_doc(bounds="a URL `dialect+driver://…`"),
    )
    db_pool_size: int = Field(10, ge=1, le=1000, description="SQLAlchemy pool size per process")
    db_pool_overflow: int = Field(20, ge=0, le=1000, description="extra connections beyond the pool")
    redis_url: str = Field(
        "redis://127.0.0.1:6379/0",
        pattern=r"^(rediss?|unix)://",
        description="Redis for the gate and the per-pair locks",
        json_schema_extra=_doc(bounds="`redis://`, `rediss://` or `unix://` URL"),
    )
    redis_cluster_url: str = Field(
        "",
        pattern=r"^(rediss?://.*)?$",
        description="if set, the gate and the locks use Redis Cluster at this URL (`redis://host:port`, credentials"
        " allowed) instead of `REDIS_URL`",
        json_schema_extra=_doc(bounds="empty or a `redis://` URL"),
    )
    redis_cluster_nodes: str = Field(
        "",
        pattern=rf"^$|{_HOST_PORTS}",
        description="the same with a node list, `host:port,host:port,…` (any reachable node is enough for"
        " discovery); rq keeps `RQ_REDIS_URL`, a standalone Redis",
        json_schema_extra=_doc(bounds="empty or `host:port` list"),
    )
    redis_max_connections: int = Field(64, ge=1, le=100_000, description="Redis connection pool size per process")
    redis_min_replica_acks: int = Field(
        0,
        ge=0,
        le=16,
        description="replicas that must hold a batch's reservations (`WAIT`, in the gate's round trip) before they"
        " are published; `1` with Redis Cluster replicas or a primary + replica, so a promoted replica forgets no"
        " promised unit. A master left without a replica then takes no reservation (503 `E5034`) until one is back:"
        " run two replicas per master to keep selling through a failover",
    )
    redis_replica_ack_timeout_ms: int = Field(
        100,
        ge=1,
        le=60_000,
        description="how long that `WAIT` waits; too few acks in time: nothing published, 503 `E5034` (the hold is"
        " left unconfirmed: the same user may retry at once, the sweeper settles the rest)",
    )
    rq_redis_url: str = Field(
        "",
        pattern=r"^((rediss?|unix)://.*)?$",
        description="Redis for the rq queue `coupon-retry` and the scheduled job",
        json_schema_extra=_doc(default="value of `REDIS_URL`", bounds="empty or a `redis://` URL"),
    )
    kafka_bootstrap_servers: str = Field(
        "127.0.0.1:9092",
        pattern=_HOST_PORTS,
        description="comma-separated brokers (`host:port,host:port,...`; a cluster: list several, any one that"
        " answers is enough)",
        json_schema_extra=_doc(bounds="`host:port` list"),
    )
    kafka_issue_topic: str = Field(
        "coupon.issue",
        pattern=_TOPIC,
        description="topic of accepted issue requests",
        json_schema_extra=_doc(bounds="a topic name"),
    )
    kafka_dlq_topic: str = Field(
        "coupon.issue.dlq",
        pattern=_TOPIC,
        description="dead-letter topic for undecodable records",
        json_schema_extra=_doc(bounds="a topic name"),
    )
    kafka_consumer_group: str = Field(
        "coupon-issuer",
        pattern=r"^[A-Za-z0-9._-]{1,249}$",
        description="consumer group of `workers.consumer`",
        json_schema_extra=_doc(bounds="a group name"),
    )
    kafka_partitions: int = Field(
        6, ge=1, le=10_000, description="partitions `flask create-topics` gives the issue topic"
    )
    kafka_replication_factor: int = Field(
        1,
        ge=1,
        le=32,
        description="replicas `flask create-topics` gives both topics (`3` on a three-broker cluster); an existing"
        " topic with another RF is reported and the command exits 1",
    )
    kafka_min_insync_replicas: int = Field(
        1,
        ge=1,
        le=32,
        description="topic config `min.insync.replicas` of both topics (`2` with RF 3): an acks=all publish needs"
        " that many in-sync copies, else the API answers 503 and nothing is reserved or the hold is settled; at most"
        " `KAFKA_REPLICATION_FACTOR`",
    )
    kafka_delivery_timeout_ms: int = Field(
        5000,
        ge=1,
        le=600_000,
        description="how long the API waits for the broker's ack before releasing the reservation and answering 503",
    )
    kafka_linger_ms: int = Field(
        0,
        ge=0,
        le=60_000,
        description="producer linger; 0 because the API already groups concurrent requests into one record",
    )
    gate_rebuild_wait_ms: int | None = Field(
        None,
        ge=0,
        le=3_600_000,
        description="how long a gate that Redis lost refuses requests (503 `E5031` + `Retry-After`) before it is"
        " rebuilt from the DB and the topic: the longest a reservation made before the loss can take to become a"
        " Kafka record. Shorter is unsafe while any API may still be publishing; `0` only where nothing is in flight",
        json_schema_extra=_doc(
            default="the publisher's bound, `1000 + KAFKA_DELIVERY_TIMEOUT_MS + 1000` (unset or empty)"
        ),
    )
    issue_max_batch: int = Field(
        1000,
        ge=1,
        le=100_000,
        description="most issue requests one API worker decides and publishes together (one gate call, one Kafka"
        " record)",
    )
    issue_queue_timeout_ms: int = Field(
        0,
        ge=0,
        le=600_000,
        description="how long an issue request may wait behind its worker's earlier batches before it is refused"
        " unsent (503 `E5036` + `Retry-After`, nothing reserved): the load-shedding bound of one worker",
        json_schema_extra=_doc(default="`KAFKA_DELIVERY_TIMEOUT_MS` (unset or `0`)"),
    )
    issue_max_in_flight: int = Field(
        1,
        ge=1,
        le=64,
        description="batches one worker has in flight at once; 1 gives the fullest batches (least CPU per request),"
        " 2 overlaps a batch's Kafka wait with the next gate call",
    )
    jwt_secret_key: SecretStr = Field(
        SecretStr(""),
        max_length=4096,
        description="HS256 signing key",
        json_schema_extra=_doc(
            default="built-in dev secret in `dev`/`test`; **required** otherwise",
            bounds="at least 32 characters outside `dev`/`test`",
        ),
    )
    jwt_access_token_expires_seconds: int = Field(
        3600, ge=1, le=31 * 24 * 3600, description="access token lifetime (`expiresIn`)"
    )
    jwt_refresh_token_expires_seconds: int = Field(
        14 * 24 * 3600,
        ge=1,
        le=366 * 24 * 3600,
        description="lifetime of each refresh token (`refreshExpiresIn`, default 14 days); every refresh hands out a"
        " new one with this lifetime",
    )
    max_content_length: int = Field(
        16 * 1024, ge=256, le=64 * 1024 * 1024, description="largest accepted request body, bytes"
    )
    failure_max_retries: int = Field(
        5, ge=0, le=1000, description="automatic republishes of a failure record before it is marked DEAD"
    )
    republish_interval_seconds: int = Field(
        10, ge=1, le=86_400, description="interval of the periodic republish job (`workers.schedule`)"
    )
    consumer_batch_size: int = Field(
        1000, ge=1, le=100_000, description="max records per consumer poll while it keeps up"
    )
    consumer_batch_size_max: int = Field(
        8000,
        ge=1,
        le=1_000_000,
        description="behind a backlog, each full poll doubles the next one's records up to this many; polls less"
        " than half full halve it back toward `CONSUMER_BATCH_SIZE`",
    )
    consumer_fetch_max_wait_ms: int = Field(
        500,
        ge=1,
        le=60_000,
        description="how long a consumer fetch waits for 64 KB of records: during a sale it fills at once; idle, it"
        " is how often the consumer and the broker wake up (500 ms: the idle consumer took 0.50 % of a core and the"
        " broker 2.25 %, against 1.75 % and 3.85 % at 100 ms), and the most a lone request's row waits for its fetch",
    )
    consumer_fetch_min_bytes: int = Field(
        64 * 1024,
        ge=1,
        le=64 * 1024 * 1024,
        description="what a fetch waits for before `CONSUMER_FETCH_MAX_WAIT_MS` is up: 64 KB fills at once during a"
        " sale (fewer, fuller batches); `1` answers as soon as any record is there. The tests use `1`: their rows"
        " land at once, and their ~70 consumers stay idle at 500 ms (at 100 ms, which the tests used before, an idle"
        " consumer and the test broker took about 5 % of a core, against 2.5 % now)",
    )
    consumer_nice: int = Field(
        19,
        ge=0,
        le=19,
        description="the consumer lowers its OS priority by this much at start, and its session's scheduler group"
        " (Linux autogroup) too when it leads its own session (a container, `setsid`): beside the API on one host a"
        " drain takes only the CPU the requests leave (at 19 a saturated API leaves it about 1.5 % of a core; the"
        " backlog waits, the replies do not: `bench/RESULTS.md`); `0` = normal priority",
    )
    consumer_chunk_events: int = Field(
        2000,
        ge=1,
        le=100_000,
        description="max events per consumer DB transaction (a bigger poll is persisted in several)",
    )
    settle_after_seconds: int = Field(
        30,
        ge=1,
        le=86_400,
        description="the sweeper settles holds nobody confirmed (503 `E5034`, a worker killed mid-request) once they"
        " are this old",
    )
    settle_interval_seconds: int = Field(
        10, ge=1, le=86_400, description="interval of the periodic sweeper job (`workers.schedule`)"
    )
    settle_lag_wait_seconds: int = Field(
        10,
        ge=0,
        le=3600,
        description="how long a sweep waits for the consumer group to commit what is on the topic; still behind →"
        " nothing is settled this time",
    )
    api_port: int = Field(
        8000,
        ge=1,
        le=65_535,
        description="port of the API (also read by `gunicorn.conf.py` and `scripts/run.sh`)",
    )
    consumer_metrics_port: int = Field(
        0,
        ge=0,
        le=65_535,
        description="port of a consumer's own `/metrics`",
        json_schema_extra=_doc(
            default="`0` (off; `make run` uses 9200, 9201, … counting up from this variable when set)"
        ),
    )
    consumer_metrics_host: str = Field(
        "127.0.0.1",
        pattern=r"^[A-Za-z0-9.:_-]+$",
        description="address that port binds to",
        json_schema_extra=_doc(bounds="a host name or address"),
    )
    rq_worker_metrics_port: int = Field(
        0,
        ge=0,
        le=65_535,
        description="port of the rq worker's own `/metrics`: the periodic jobs' runs and last success, the sweeper's"
        " outcomes, the consumer group's lag asked of the brokers",
        json_schema_extra=_doc(default="`0` (off; `make run` uses 9300)"),
    )
    rq_worker_metrics_host: str = Field(
        "127.0.0.1",
        pattern=r"^[A-Za-z0-9.:_-]+$",
        description="address that port binds to",
        json_schema_extra=_doc(bounds="a host name or address"),
    )
    log_level: LogLevel = Field(
        "INFO",
        description="log level of every process: API, gunicorn, consumer, rq worker, scheduler, CLI"
        " (`coupon/observability/log_setup.py`). Logs are JSON lines on stderr",
    )
    kafka_log_level: LogLevel = Field("CRITICAL", description="log level of the `kafka` library logger")
    rate_limit_user_requests: int = Field(
        60,
        ge=0,
        le=1_000_000,
        description="requests per window for each user (every authenticated `/api` call); over it → 429 `E429` +"
        " `Retry-After`, before the gate; `0` = off",
    )
    rate_limit_user_window_seconds: int = Field(10, ge=0, le=86_400, description="the window of that limit")
    rate_limit_admin_requests: int = Field(
        600,
        ge=0,
        le=1_000_000,
        description="the same, for tokens with role ADMIN instead of the user limit (a dashboard polling a live sale"
        " several times a second); `0` = off",
    )
    rate_limit_admin_window_seconds: int = Field(10, ge=0, le=86_400, description="the window of that limit")
    rate_limit_address_requests: int = Field(
        0,
        ge=0,
        le=1_000_000,
        description="requests per window for each client address (every `/api` call); `0` = off, the default"
        " because tests and benchmarks come from one address; compose sets 300",
    )
    rate_limit_address_window_seconds: int = Field(10, ge=0, le=86_400, description="the window of that limit")
    trusted_proxies: str = Field(
        "",
        max_length=65_536,
        description="comma-separated proxy addresses/CIDRs whose `X-Forwarded-For` is believed (the client is the"
        " rightmost hop that isn't one of them). Set it behind a load balancer, or every client shares the proxy's"
        " address",
        json_schema_extra=_doc(bounds="addresses / CIDRs"),
    )
    stock_stream_tick_ms: int = Field(
        250,
        ge=10,
        le=60_000,
        description="live stock: how often each API worker reads a watched coupon's gate (one pipeline per coupon,"
        " whatever the number of streams) and sends what changed",
    )
    stock_stream_heartbeat_seconds: int = Field(
        15, ge=1, le=3600, description="a comment line after this many seconds without an event"
    )
    stock_stream_max_seconds: int = Field(
        300,
        ge=1,
        le=86_400,
        description="a stream ends after at most this long (each 90-100 % of it) and its client reconnects with its"
        " Last-Event-ID, so no stream outlives a token or holds a shutdown",
    )
    stock_stream_retry_ms: int = Field(
        2000,
        ge=0,
        le=3_600_000,
        description="the `retry:` hint: a client's delay before it reconnects (`60000` after the final event)",
    )
    login_max_attempts: int = Field(
        5,
        ge=0,
        le=1_000_000,
        description="login attempts per username per window; a success clears them. Can't be `0` in production",
    )
    login_attempt_window_seconds: int = Field(
        300, ge=0, le=86_400, description="the window of that limit. Can't be `0` in production"
    )
    hash_threads: int = Field(
        1,
        ge=1,
        le=64,
        description="native threads per API worker that compute the scrypt password hashes of signup and login"
        " (`coupon/adapters/hasher.py`); the gevent hub never hashes, so issue requests keep moving during a signup"
        " rush",
    )
    hash_max_queue: int = Field(
        32,
        ge=1,
        le=100_000,
        description="signups/logins per API worker admitted to hashing at once (running + waiting); one more gets"
        " 503 `E5035` + `Retry-After` at once instead of a long wait (a full queue clears in about `HASH_MAX_QUEUE`"
        " × 80 ms ÷ `HASH_THREADS`)",
    )
    hash_nice: int = Field(
        10,
        ge=0,
        le=19,
        description="OS nice value of the hashing threads (Linux, per thread): when the box is busy, the issue path"
        " of the same worker gets the CPU first; `0` = normal priority",
    )

    @field_validator("*", mode="before")
    @classmethod
    def _empty_means_default(cls, value: Any, info: ValidationInfo) -> Any:
        # An exported-but-empty variable (VAR= in a compose file) means "not set" for anything but free text.
        field = cls.model_fields[info.field_name or ""]
        if value == "" and field.annotation not in (str, SecretStr):
            return field.get_default()
        return value

    @field_validator("log_level", "kafka_log_level", mode="before")
    @classmethod
    def _level_in_capitals(cls, value: Any) -> Any:
        # gunicorn takes the same variable in lower case.
        return value.upper() if isinstance(value, str) else value

    @field_validator("trusted_proxies")
    @classmethod
    def _trusted_proxies_parse(cls, value: str) -> str:
        # A bad entry stops the start-up rather than trusting too much.
        try:
            parse_trusted(value)
        except RuntimeError as exc:
            raise PydanticCustomError("trusted_proxies", str(exc).removeprefix("TRUSTED_PROXIES: ")) from None
        return value

    @model_validator(mode="after")
    def _resolve_and_check(self) -> Settings:
        # The derived defaults are settled here, while validating, so readers only ever see final values.
        resolved: dict[str, Any] = {}
        if not self.rq_redis_url:
            resolved["rq_redis_url"] = self.redis_url
        if not self.issue_queue_timeout_ms:
            resolved["issue_queue_timeout_ms"] = self.kafka_delivery_timeout_ms
        if not self.jwt_secret_key.get_secret_value() and self.app_env in _DEV_ENVS:
            resolved["jwt_secret_key"] = SecretStr(DEV_JWT_SECRET)
        self.__dict__.update(resolved)  # frozen to its readers; this is its own validation finishing
        problems = [*self._consistency_problems(), *self._production_problems()]
        if problems:
            raise PydanticCustomError("settings", "\n  ".join(problems))
        return self

    def _consistency_problems(self) -> list[str]:
        problems = []
        if self.kafka_min_insync_replicas > self.kafka_replication_factor:
            problems.append(
                f"KAFKA_MIN_INSYNC_REPLICAS ({self.kafka_min_insync_replicas}) can't exceed KAFKA_REPLICATION_FACTOR"
                f" ({self.kafka_replication_factor}): no acks=all write could ever succeed"
            )
        return problems

    def _production_problems(self) -> list[str]:
        """Dev and test get a documented default secret; anything else must bring its own."""
        if self.app_env in _DEV_ENVS:
            return []
        problems = []
        secret = self.jwt_secret_key.get_secret_value()
        if not secret or secret == DEV_JWT_SECRET or len(secret) < 32:
            problems.append(
                "JWT_SECRET_KEY must be set to a random value of at least 32 characters "
                f"when APP_ENV={self.app_env!r} (dev/test use a built-in default)"
            )
        if "coupon:coupon@" in self.database_url:
            problems.append(f"DATABASE_URL uses the dev default credentials in APP_ENV={self.app_env!r}")
        # Brute-force protection of the login can't be switched off in production.
        if self.login_max_attempts <= 0 or self.login_attempt_window_seconds <= 0:
            problems.append(
                f"LOGIN_MAX_ATTEMPTS and LOGIN_ATTEMPT_WINDOW_SECONDS must be > 0 in APP_ENV={self.app_env!r}"
            )
        return problems

    def flask_config(self) -> dict[str, Any]:
        """The Flask and extension keys (Flask-SQLAlchemy, flask-jwt-extended) derived from the settings: the one
        place the app's settings reach app.config."""
        return {
            "SQLALCHEMY_DATABASE_URI": self.database_url,
            "SQLALCHEMY_ENGINE_OPTIONS": {
                "pool_pre_ping": True,
                "pool_recycle": 1800,
                "pool_size": self.db_pool_size,
                "max_overflow": self.db_pool_overflow,
                "pool_timeout": 5,
                "connect_args": {"connect_timeout": 3, "read_timeout": 10, "write_timeout": 10},
            },
            "SQLALCHEMY_TRACK_MODIFICATIONS": False,
            "JWT_SECRET_KEY": self.jwt_secret_key.get_secret_value(),
            "JWT_ACCESS_TOKEN_EXPIRES": timedelta(seconds=self.jwt_access_token_expires_seconds),
            "MAX_CONTENT_LENGTH": self.max_content_length,
        }


class SettingsError(RuntimeError):
    """Settings the app can't start with: one line per problem, named by environment variable."""


# Values that may hold credentials are never echoed back in an error.
_CONFIDENTIAL = frozenset({"jwt_secret_key", "database_url", "redis_url", "redis_cluster_url", "rq_redis_url"})


def _problem(error: Any) -> str:
    """One pydantic error as an operator reads it: `DB_POOL_SIZE must be an integer, got 'ten'`."""
    loc = error["loc"]
    if not loc:
        return str(error["msg"])
    name = str(loc[0])
    got = "" if name in _CONFIDENTIAL else f", got {error['input']!r}"
    ctx = error.get("ctx") or {}
    kind = error["type"]
    if kind in ("int_parsing", "int_from_float", "int_type"):
        what = "must be an integer"
    elif kind == "greater_than_equal":
        what = f"must be at least {ctx['ge']}"
    elif kind == "less_than_equal":
        what = f"must be at most {ctx['le']}"
    elif kind == "string_pattern_mismatch":
        field = Settings.model_fields.get(name)
        extra = field.json_schema_extra if field is not None and isinstance(field.json_schema_extra, dict) else {}
        what = f"must be {extra.get('doc_bounds', 'of the form ' + str(ctx.get('pattern')))}".replace("`", "")
    elif kind == "literal_error":
        what = f"must be one of {ctx.get('expected')}"
    elif kind == "extra_forbidden":
        return f"{name.upper()} is not a setting"
    else:
        what = str(error["msg"])[:1].lower() + str(error["msg"])[1:]
    return f"{name.upper()} {what}{got}"


_FIELDS = tuple(Settings.model_fields)


def load_settings(overrides: dict[str, Any] | None = None) -> Settings:
    """The environment, then explicit overrides by environment-variable name (tests), checked as one."""
    values: dict[str, Any] = {name: os.environ[name.upper()] for name in _FIELDS if name.upper() in os.environ}
    values.update((name.lower(), value) for name, value in (overrides or {}).items())
    try:
        return Settings(**values)
    except ValidationError as exc:
        lines = [_problem(error) for error in exc.errors(include_url=False)]
        raise SettingsError("invalid configuration:\n  " + "\n  ".join(lines)) from None


@contextmanager
def exit_if_invalid(status: int = 2) -> Iterator[None]:
    """At a process's entry point: invalid settings end it with their lines on stderr, not a traceback."""
    try:
        yield
    except SettingsError as exc:
        print(exc, file=sys.stderr)
        raise SystemExit(status) from None


def init_app(app: Flask, settings: Settings) -> None:
    app.config.update(settings.flask_config())
    app.extensions[_EXTENSION] = settings


def of(app: Flask) -> Settings:
    settings: Settings = app.extensions[_EXTENSION]
    return settings


def current() -> Settings:
    """This app's settings (inside an app or request context)."""
    settings: Settings = current_app.extensions[_EXTENSION]
    return settings
