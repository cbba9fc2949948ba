"""Unit tests for coupon.config.load_config: defaults, integer parsing and production secret checks."""

from __future__ import annotations

import pytest

from coupon.config import DEV_JWT_SECRET, load_config

GOOD_SECRET = "k" * 16 + "9f3a1c7e5b2d4f6a8c0e"  # 36 characters, not the dev default
PROD_DB = "mysql+pymysql://svc:Str0ng@db.internal:3306/coupon"

INT_SETTINGS = [
    ("DB_POOL_SIZE", lambda c: c["SQLALCHEMY_ENGINE_OPTIONS"]["pool_size"]),
    ("DB_POOL_OVERFLOW", lambda c: c["SQLALCHEMY_ENGINE_OPTIONS"]["max_overflow"]),
    ("REDIS_MAX_CONNECTIONS", lambda c: c["REDIS_MAX_CONNECTIONS"]),
    ("KAFKA_PARTITIONS", lambda c: c["KAFKA_PARTITIONS"]),
    ("KAFKA_REPLICATION_FACTOR", lambda c: c["KAFKA_REPLICATION_FACTOR"]),
    ("KAFKA_DELIVERY_TIMEOUT_MS", lambda c: c["KAFKA_DELIVERY_TIMEOUT_MS"]),
    ("KAFKA_LINGER_MS", lambda c: c["KAFKA_LINGER_MS"]),
    ("ISSUE_QUEUE_TIMEOUT_MS", lambda c: c["ISSUE_QUEUE_TIMEOUT_MS"]),
    ("JWT_ACCESS_TOKEN_EXPIRES_SECONDS", lambda c: c["JWT_ACCESS_TOKEN_EXPIRES_SECONDS"]),
    ("JWT_REFRESH_TOKEN_EXPIRES_SECONDS", lambda c: c["JWT_REFRESH_TOKEN_EXPIRES_SECONDS"]),
    ("MAX_CONTENT_LENGTH", lambda c: c["MAX_CONTENT_LENGTH"]),
    ("FAILURE_MAX_RETRIES", lambda c: c["FAILURE_MAX_RETRIES"]),
    ("REPUBLISH_INTERVAL_SECONDS", lambda c: c["REPUBLISH_INTERVAL_SECONDS"]),
    ("CONSUMER_BATCH_SIZE", lambda c: c["CONSUMER_BATCH_SIZE"]),
    ("CONSUMER_CHUNK_EVENTS", lambda c: c["CONSUMER_CHUNK_EVENTS"]),
    ("CONSUMER_BATCH_SIZE_MAX", lambda c: c["CONSUMER_BATCH_SIZE_MAX"]),
    ("CONSUMER_FETCH_MAX_WAIT_MS", lambda c: c["CONSUMER_FETCH_MAX_WAIT_MS"]),
    ("CONSUMER_FETCH_MIN_BYTES", lambda c: c["CONSUMER_FETCH_MIN_BYTES"]),
    ("CONSUMER_NICE", lambda c: c["CONSUMER_NICE"]),
    ("API_PORT", lambda c: c["API_PORT"]),
    ("RATE_LIMIT_USER_REQUESTS", lambda c: c["RATE_LIMIT_USER_REQUESTS"]),
    ("RATE_LIMIT_USER_WINDOW_SECONDS", lambda c: c["RATE_LIMIT_USER_WINDOW_SECONDS"]),
    ("RATE_LIMIT_ADMIN_REQUESTS", lambda c: c["RATE_LIMIT_ADMIN_REQUESTS"]),
    ("RATE_LIMIT_ADMIN_WINDOW_SECONDS", lambda c: c["RATE_LIMIT_ADMIN_WINDOW_SECONDS"]),
    ("RATE_LIMIT_ADDRESS_REQUESTS", lambda c: c["RATE_LIMIT_ADDRESS_REQUESTS"]),
    ("RATE_LIMIT_ADDRESS_WINDOW_SECONDS", lambda c: c["RATE_LIMIT_ADDRESS_WINDOW_SECONDS"]),
    ("LOGIN_MAX_ATTEMPTS", lambda c: c["LOGIN_MAX_ATTEMPTS"]),
    ("LOGIN_ATTEMPT_WINDOW_SECONDS", lambda c: c["LOGIN_ATTEMPT_WINDOW_SECONDS"]),
]

ENV_NAMES = [
    "APP_ENV",
    "JWT_SECRET_KEY",
    "DATABASE_URL",
    "REDIS_URL",
    "REDIS_CLUSTER_URL",
    "REDIS_CLUSTER_NODES",
    "RQ_REDIS_URL",
    "KAFKA_BOOTSTRAP_SERVERS",
    "KAFKA_ISSUE_TOPIC",
    "KAFKA_DLQ_TOPIC",
    "KAFKA_CONSUMER_GROUP",
    *(name for name, _ in INT_SETTINGS),
    "TRUSTED_PROXIES",
]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def production(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    monkeypatch.setenv("APP_ENV", "production")
    monkeypatch.setenv("JWT_SECRET_KEY", GOOD_SECRET)
    monkeypatch.setenv("DATABASE_URL", PROD_DB)
    return monkeypatch


def test_without_app_env_the_config_is_dev() -> None:
    assert load_config()["APP_ENV"] == "dev"


@pytest.mark.parametrize("env", ["dev", "test"])
def test_dev_and_test_get_the_default_secret(monkeypatch: pytest.MonkeyPatch, env: str) -> None:
    monkeypatch.setenv("APP_ENV", env)
    cfg = load_config()
    assert cfg["APP_ENV"] == env
    assert cfg["JWT_SECRET_KEY"] == DEV_JWT_SECRET


@pytest.mark.parametrize("env", ["dev", "test"])
def test_dev_and_test_keep_an_explicit_secret(monkeypatch: pytest.MonkeyPatch, env: str) -> None:
    monkeypatch.setenv("APP_ENV", env)
    monkeypatch.setenv("JWT_SECRET_KEY", "short")
    assert load_config()["JWT_SECRET_KEY"] == "short"


def test_dev_tolerates_the_dev_database_credentials() -> None:
    cfg = load_config()
    assert "coupon:coupon@" in cfg["SQLALCHEMY_DATABASE_URI"]


def test_production_with_a_good_secret_and_database_works(production: pytest.MonkeyPatch) -> None:
    cfg = load_config()
    assert cfg["APP_ENV"] == "production"
    assert cfg["JWT_SECRET_KEY"] == GOOD_SECRET
    assert cfg["SQLALCHEMY_DATABASE_URI"] == PROD_DB


def test_production_without_a_secret_raises(production: pytest.MonkeyPatch) -> None:
    production.delenv("JWT_SECRET_KEY")
    with pytest.raises(RuntimeError, match="JWT_SECRET_KEY"):
        load_config()


def test_production_with_an_empty_secret_raises(production: pytest.MonkeyPatch) -> None:
    production.setenv("JWT_SECRET_KEY", "")
    with pytest.raises(RuntimeError, match="JWT_SECRET_KEY"):
        load_config()


@pytest.mark.parametrize("length", [1, 16, 31])
def test_production_with_a_short_secret_raises(production: pytest.MonkeyPatch, length: int) -> None:
    production.setenv("JWT_SECRET_KEY", "s" * length)
    with pytest.raises(RuntimeError, match="at least 32"):
        load_config()


def test_production_accepts_a_secret_of_exactly_32_characters(production: pytest.MonkeyPatch) -> None:
    production.setenv("JWT_SECRET_KEY", "s" * 32)
    assert load_config()["JWT_SECRET_KEY"] == "s" * 32


def test_production_with_the_dev_secret_raises(production: pytest.MonkeyPatch) -> None:
    production.setenv("JWT_SECRET_KEY", DEV_JWT_SECRET)
    with pytest.raises(RuntimeError, match="JWT_SECRET_KEY"):
        load_config()


def test_production_with_the_default_database_url_raises(production: pytest.MonkeyPatch) -> None:
    production.delenv("DATABASE_URL")
    with pytest.raises(RuntimeError, match="DATABASE_URL"):
        load_config()


def test_production_with_dev_database_credentials_raises(production: pytest.MonkeyPatch) -> None:
    production.setenv("DATABASE_URL", "mysql+pymysql://coupon:coupon@db.internal:3306/coupon")
    with pytest.raises(RuntimeError, match="DATABASE_URL"):
        load_config()


@pytest.mark.parametrize("env", ["staging", "prod", "PRODUCTION"])
def test_any_non_dev_environment_is_strict(monkeypatch: pytest.MonkeyPatch, env: str) -> None:
    monkeypatch.setenv("APP_ENV", env)
    monkeypatch.setenv("DATABASE_URL", PROD_DB)
    with pytest.raises(RuntimeError, match="JWT_SECRET_KEY"):
        load_config()


def test_overrides_are_checked_too(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(RuntimeError, match="JWT_SECRET_KEY"):
        load_config({"APP_ENV": "production", "SQLALCHEMY_DATABASE_URI": PROD_DB})


def test_overrides_win_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_PARTITIONS", "3")
    assert load_config({"KAFKA_PARTITIONS": 12})["KAFKA_PARTITIONS"] == 12


@pytest.mark.parametrize(("name", "read"), INT_SETTINGS, ids=[n for n, _ in INT_SETTINGS])
def test_integer_settings_are_read_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, name: str, read: object
) -> None:
    monkeypatch.setenv(name, "4321")
    assert read(load_config()) == 4321  # type: ignore[operator]


@pytest.mark.parametrize(("name", "read"), INT_SETTINGS, ids=[n for n, _ in INT_SETTINGS])
def test_an_empty_integer_setting_means_the_default(monkeypatch: pytest.MonkeyPatch, name: str, read: object) -> None:
    default = read(load_config())  # type: ignore[operator]
    monkeypatch.setenv(name, "")
    assert read(load_config()) == default  # type: ignore[operator]
    assert isinstance(default, int)


@pytest.mark.parametrize("raw", ["ten", "1.5", "0x10", "12abc"])
def test_a_bad_integer_names_the_variable_and_value(monkeypatch: pytest.MonkeyPatch, raw: str) -> None:
    monkeypatch.setenv("DB_POOL_SIZE", raw)
    with pytest.raises(RuntimeError) as exc_info:
        load_config()
    assert "DB_POOL_SIZE" in str(exc_info.value)
    assert repr(raw) in str(exc_info.value)
    assert isinstance(exc_info.value.__cause__, ValueError)


def test_string_settings_are_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_ISSUE_TOPIC", "t.issue")
    monkeypatch.setenv("REDIS_URL", "redis://cache:6379/1")
    cfg = load_config()
    assert cfg["KAFKA_ISSUE_TOPIC"] == "t.issue"
    assert cfg["REDIS_URL"] == "redis://cache:6379/1"
    assert cfg["RQ_REDIS_URL"] == "redis://cache:6379/1"  # follows REDIS_URL unless set


def test_each_call_returns_a_fresh_dict() -> None:
    first = load_config()
    first["SQLALCHEMY_ENGINE_OPTIONS"]["pool_size"] = -1
    assert load_config()["SQLALCHEMY_ENGINE_OPTIONS"]["pool_size"] != -1


def test_rate_limit_defaults_limit_users_and_logins_but_not_addresses() -> None:
    cfg = load_config()
    assert cfg["RATE_LIMIT_USER_REQUESTS"] > 0 and cfg["LOGIN_MAX_ATTEMPTS"] > 0
    # Admins get the larger budget a polling dashboard needs: 600 per 10 s against the users' 60.
    assert (cfg["RATE_LIMIT_ADMIN_REQUESTS"], cfg["RATE_LIMIT_ADMIN_WINDOW_SECONDS"]) == (600, 10)
    assert cfg["RATE_LIMIT_ADDRESS_REQUESTS"] == 0  # off: tests and load runs come from one address
    assert cfg["TRUSTED_PROXIES"] == ""


@pytest.mark.parametrize(
    "name",
    [
        "RATE_LIMIT_USER_REQUESTS",
        "RATE_LIMIT_ADDRESS_WINDOW_SECONDS",
        "LOGIN_MAX_ATTEMPTS",
        "RATE_LIMIT_ADMIN_REQUESTS",
        "RATE_LIMIT_ADMIN_WINDOW_SECONDS",
    ],
)
def test_negative_limits_are_refused(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    monkeypatch.setenv(name, "-1")
    with pytest.raises(RuntimeError, match=name):
        load_config()


@pytest.mark.parametrize("name", ["LOGIN_MAX_ATTEMPTS", "LOGIN_ATTEMPT_WINDOW_SECONDS"])
def test_production_refuses_to_switch_off_the_login_limit(production: pytest.MonkeyPatch, name: str) -> None:
    production.setenv(name, "0")
    with pytest.raises(RuntimeError, match="LOGIN_MAX_ATTEMPTS"):
        load_config()


def test_production_refuses_an_invalid_trusted_proxy(production: pytest.MonkeyPatch) -> None:
    production.setenv("TRUSTED_PROXIES", "10.0.0.0/8,my-proxy")
    with pytest.raises(RuntimeError, match="TRUSTED_PROXIES"):
        load_config()


def test_consumer_chunk_events_defaults_to_2000() -> None:
    assert load_config()["CONSUMER_CHUNK_EVENTS"] == 2000


@pytest.mark.parametrize(
    "name",
    [
        "CONSUMER_BATCH_SIZE",
        "CONSUMER_BATCH_SIZE_MAX",
        "CONSUMER_CHUNK_EVENTS",
        "JWT_ACCESS_TOKEN_EXPIRES_SECONDS",
        "JWT_REFRESH_TOKEN_EXPIRES_SECONDS",
    ],
)
@pytest.mark.parametrize("value", ["0", "-5"])
def test_sizes_and_token_lifetimes_below_one_stop_the_start_up(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(RuntimeError, match=f"{name} must be at least 1"):
        load_config()


def test_the_issue_queue_timeout_follows_the_delivery_timeout_unless_set(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_config()["ISSUE_QUEUE_TIMEOUT_MS"] == 5000
    monkeypatch.setenv("KAFKA_DELIVERY_TIMEOUT_MS", "3000")
    assert load_config()["ISSUE_QUEUE_TIMEOUT_MS"] == 3000
    assert load_config({"KAFKA_DELIVERY_TIMEOUT_MS": 7000})["ISSUE_QUEUE_TIMEOUT_MS"] == 7000
    monkeypatch.setenv("ISSUE_QUEUE_TIMEOUT_MS", "0")
    assert load_config()["ISSUE_QUEUE_TIMEOUT_MS"] == 3000
    monkeypatch.setenv("ISSUE_QUEUE_TIMEOUT_MS", "20000")
    cfg = load_config()
    assert (cfg["KAFKA_DELIVERY_TIMEOUT_MS"], cfg["ISSUE_QUEUE_TIMEOUT_MS"]) == (3000, 20000)
    monkeypatch.setenv("ISSUE_QUEUE_TIMEOUT_MS", "-5")
    with pytest.raises(RuntimeError, match="ISSUE_QUEUE_TIMEOUT_MS must be at least 1"):
        load_config()


def test_kafka_replication_defaults_fit_the_single_dev_broker() -> None:
    cfg = load_config()
    assert (cfg["KAFKA_REPLICATION_FACTOR"], cfg["KAFKA_MIN_INSYNC_REPLICAS"]) == (1, 1)


def test_kafka_min_insync_replicas_above_the_replication_factor_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_REPLICATION_FACTOR", "3")
    monkeypatch.setenv("KAFKA_MIN_INSYNC_REPLICAS", "2")
    assert load_config()["KAFKA_MIN_INSYNC_REPLICAS"] == 2
    monkeypatch.setenv("KAFKA_MIN_INSYNC_REPLICAS", "4")
    with pytest.raises(RuntimeError, match="KAFKA_MIN_INSYNC_REPLICAS"):
        load_config()
    monkeypatch.setenv("KAFKA_REPLICATION_FACTOR", "0")
    with pytest.raises(RuntimeError, match="KAFKA_REPLICATION_FACTOR must be at least 1"):
        load_config()
