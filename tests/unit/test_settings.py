"""Unit tests for coupon.settings: defaults, integer parsing, bounds, error lines and production secret checks."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from coupon.settings import DEV_JWT_SECRET, Settings, SettingsError, load_settings

GOOD_SECRET = "k" * 16 + "9f3a1c7e5b2d4f6a8c0e"  # 36 characters, not the dev default
PROD_DB = "mysql+pymysql://svc:Str0ng@db.internal:3306/coupon"

INT_SETTINGS = sorted(
    name.upper() for name, field in Settings.model_fields.items() if field.annotation in (int, int | None)
)


def _within_bounds(name: str) -> int:
    """A value other than the default that the field accepts."""
    field = Settings.model_fields[name.lower()]
    le = next((m.le for m in field.metadata if getattr(m, "le", None) is not None), 4321)
    return min(4321, le) if field.get_default() != min(4321, le) else le - 1


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
    *INT_SETTINGS,
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
    assert load_settings().app_env == "dev"


@pytest.mark.parametrize("env", ["dev", "test"])
def test_dev_and_test_get_the_default_secret(monkeypatch: pytest.MonkeyPatch, env: str) -> None:
    monkeypatch.setenv("APP_ENV", env)
    cfg = load_settings()
    assert cfg.app_env == env
    assert cfg.jwt_secret_key.get_secret_value() == DEV_JWT_SECRET


@pytest.mark.parametrize("env", ["dev", "test"])
def test_dev_and_test_keep_an_explicit_secret(monkeypatch: pytest.MonkeyPatch, env: str) -> None:
    monkeypatch.setenv("APP_ENV", env)
    monkeypatch.setenv("JWT_SECRET_KEY", "short")
    assert load_settings().jwt_secret_key.get_secret_value() == "short"


def test_dev_tolerates_the_dev_database_credentials() -> None:
    cfg = load_settings()
    assert "coupon:coupon@" in cfg.database_url


def test_production_with_a_good_secret_and_database_works(production: pytest.MonkeyPatch) -> None:
    cfg = load_settings()
    assert cfg.app_env == "production"
    assert cfg.jwt_secret_key.get_secret_value() == GOOD_SECRET
    assert cfg.database_url == PROD_DB


def test_production_without_a_secret_raises(production: pytest.MonkeyPatch) -> None:
    production.delenv("JWT_SECRET_KEY")
    with pytest.raises(SettingsError, match="JWT_SECRET_KEY"):
        load_settings()


def test_production_with_an_empty_secret_raises(production: pytest.MonkeyPatch) -> None:
    production.setenv("JWT_SECRET_KEY", "")
    with pytest.raises(SettingsError, match="JWT_SECRET_KEY"):
        load_settings()


@pytest.mark.parametrize("length", [1, 16, 31])
def test_production_with_a_short_secret_raises(production: pytest.MonkeyPatch, length: int) -> None:
    production.setenv("JWT_SECRET_KEY", "s" * length)
    with pytest.raises(SettingsError, match="at least 32"):
        load_settings()


def test_production_accepts_a_secret_of_exactly_32_characters(production: pytest.MonkeyPatch) -> None:
    production.setenv("JWT_SECRET_KEY", "s" * 32)
    assert load_settings().jwt_secret_key.get_secret_value() == "s" * 32


def test_production_with_the_dev_secret_raises(production: pytest.MonkeyPatch) -> None:
    production.setenv("JWT_SECRET_KEY", DEV_JWT_SECRET)
    with pytest.raises(SettingsError, match="JWT_SECRET_KEY"):
        load_settings()


def test_production_with_the_default_database_url_raises(production: pytest.MonkeyPatch) -> None:
    production.delenv("DATABASE_URL")
    with pytest.raises(SettingsError, match="DATABASE_URL"):
        load_settings()


def test_production_with_dev_database_credentials_raises(production: pytest.MonkeyPatch) -> None:
    production.setenv("DATABASE_URL", "mysql+pymysql://coupon:coupon@db.internal:3306/coupon")
    with pytest.raises(SettingsError, match="DATABASE_URL"):
        load_settings()


@pytest.mark.parametrize("env", ["staging", "prod", "PRODUCTION"])
def test_any_non_dev_environment_is_strict(monkeypatch: pytest.MonkeyPatch, env: str) -> None:
    monkeypatch.setenv("APP_ENV", env)
    monkeypatch.setenv("DATABASE_URL", PROD_DB)
    with pytest.raises(SettingsError, match="JWT_SECRET_KEY"):
        load_settings()


def test_overrides_are_checked_too(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(SettingsError, match="JWT_SECRET_KEY"):
        load_settings({"APP_ENV": "production", "DATABASE_URL": PROD_DB})


def test_overrides_win_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_PARTITIONS", "3")
    assert load_settings({"KAFKA_PARTITIONS": 12}).kafka_partitions == 12


@pytest.mark.parametrize("name", INT_SETTINGS)
def test_integer_settings_are_read_from_the_environment(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    value = _within_bounds(name)
    if name in ("KAFKA_MIN_INSYNC_REPLICAS", "KAFKA_REPLICATION_FACTOR"):
        monkeypatch.setenv("KAFKA_REPLICATION_FACTOR", str(value))
    monkeypatch.setenv(name, str(value))
    assert getattr(load_settings(), name.lower()) == value


@pytest.mark.parametrize("name", INT_SETTINGS)
def test_an_empty_integer_setting_means_the_default(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    default = getattr(load_settings(), name.lower())
    monkeypatch.setenv(name, "")
    assert getattr(load_settings(), name.lower()) == default


def test_the_pool_settings_reach_the_engine_options(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DB_POOL_SIZE", "7")
    monkeypatch.setenv("DB_POOL_OVERFLOW", "3")
    options = load_settings().flask_config()["SQLALCHEMY_ENGINE_OPTIONS"]
    assert (options["pool_size"], options["max_overflow"]) == (7, 3)


@pytest.mark.parametrize("raw", ["ten", "1.5", "0x10", "12abc"])
def test_a_bad_integer_names_the_variable_and_value(monkeypatch: pytest.MonkeyPatch, raw: str) -> None:
    monkeypatch.setenv("DB_POOL_SIZE", raw)
    with pytest.raises(SettingsError) as exc_info:
        load_settings()
    assert f"DB_POOL_SIZE must be an integer, got {raw!r}" in str(exc_info.value)


def test_every_bad_value_is_one_line_naming_its_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DB_POOL_SIZE", "ten")
    monkeypatch.setenv("CONSUMER_NICE", "25")
    monkeypatch.setenv("LOG_LEVEL", "loud")
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "no-port")
    with pytest.raises(SettingsError) as exc_info:
        load_settings()
    assert str(exc_info.value).splitlines() == [
        "invalid configuration:",
        "  DB_POOL_SIZE must be an integer, got 'ten'",
        "  KAFKA_BOOTSTRAP_SERVERS must be host:port list, got 'no-port'",
        "  CONSUMER_NICE must be at most 19, got '25'",
        "  LOG_LEVEL must be one of 'DEBUG', 'INFO', 'WARNING', 'ERROR' or 'CRITICAL', got 'LOUD'",
    ]


def test_a_bad_secret_or_url_is_not_echoed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "secret-password-here")
    with pytest.raises(SettingsError) as exc_info:
        load_settings()
    assert "DATABASE_URL must be" in str(exc_info.value)
    assert "secret-password-here" not in str(exc_info.value)


def test_an_unknown_override_is_refused() -> None:
    with pytest.raises(SettingsError, match="KAFKA_PARTITION is not a setting"):
        load_settings({"KAFKA_PARTITION": 3})


def test_log_levels_take_any_case(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOG_LEVEL", "debug")
    assert load_settings().log_level == "DEBUG"


def test_string_settings_are_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_ISSUE_TOPIC", "t.issue")
    monkeypatch.setenv("REDIS_URL", "redis://cache:6379/1")
    cfg = load_settings()
    assert cfg.kafka_issue_topic == "t.issue"
    assert cfg.redis_url == "redis://cache:6379/1"
    assert cfg.rq_redis_url == "redis://cache:6379/1"  # follows REDIS_URL unless set


def test_settings_are_read_only() -> None:
    with pytest.raises(ValidationError):
        load_settings().db_pool_size = 1  # type: ignore[misc]


def test_rate_limit_defaults_limit_users_and_logins_but_not_addresses() -> None:
    cfg = load_settings()
    assert cfg.rate_limit_user_requests > 0 and cfg.login_max_attempts > 0
    # Admins get the larger budget a polling dashboard needs: 600 per 10 s against the users' 60.
    assert (cfg.rate_limit_admin_requests, cfg.rate_limit_admin_window_seconds) == (600, 10)
    assert cfg.rate_limit_address_requests == 0  # off: tests and load runs come from one address
    assert cfg.trusted_proxies == ""


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
    with pytest.raises(SettingsError, match=name):
        load_settings()


@pytest.mark.parametrize("name", ["LOGIN_MAX_ATTEMPTS", "LOGIN_ATTEMPT_WINDOW_SECONDS"])
def test_production_refuses_to_switch_off_the_login_limit(production: pytest.MonkeyPatch, name: str) -> None:
    production.setenv(name, "0")
    with pytest.raises(SettingsError, match="LOGIN_MAX_ATTEMPTS"):
        load_settings()


def test_production_refuses_an_invalid_trusted_proxy(production: pytest.MonkeyPatch) -> None:
    production.setenv("TRUSTED_PROXIES", "10.0.0.0/8,my-proxy")
    with pytest.raises(SettingsError, match="TRUSTED_PROXIES"):
        load_settings()


def test_consumer_chunk_events_defaults_to_2000() -> None:
    assert load_settings().consumer_chunk_events == 2000


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
    with pytest.raises(SettingsError, match=f"{name} must be at least 1"):
        load_settings()


def test_the_issue_queue_timeout_follows_the_delivery_timeout_unless_set(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings().issue_queue_timeout_ms == 5000
    monkeypatch.setenv("KAFKA_DELIVERY_TIMEOUT_MS", "3000")
    assert load_settings().issue_queue_timeout_ms == 3000
    assert load_settings({"KAFKA_DELIVERY_TIMEOUT_MS": 7000}).issue_queue_timeout_ms == 7000
    monkeypatch.setenv("ISSUE_QUEUE_TIMEOUT_MS", "0")
    assert load_settings().issue_queue_timeout_ms == 3000
    monkeypatch.setenv("ISSUE_QUEUE_TIMEOUT_MS", "20000")
    cfg = load_settings()
    assert (cfg.kafka_delivery_timeout_ms, cfg.issue_queue_timeout_ms) == (3000, 20000)
    monkeypatch.setenv("ISSUE_QUEUE_TIMEOUT_MS", "-5")
    with pytest.raises(SettingsError, match="ISSUE_QUEUE_TIMEOUT_MS must be at least 0"):
        load_settings()


def test_kafka_replication_defaults_fit_the_single_dev_broker() -> None:
    cfg = load_settings()
    assert (cfg.kafka_replication_factor, cfg.kafka_min_insync_replicas) == (1, 1)


def test_kafka_min_insync_replicas_above_the_replication_factor_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_REPLICATION_FACTOR", "3")
    monkeypatch.setenv("KAFKA_MIN_INSYNC_REPLICAS", "2")
    assert load_settings().kafka_min_insync_replicas == 2
    monkeypatch.setenv("KAFKA_MIN_INSYNC_REPLICAS", "4")
    with pytest.raises(SettingsError, match="KAFKA_MIN_INSYNC_REPLICAS"):
        load_settings()
    monkeypatch.setenv("KAFKA_REPLICATION_FACTOR", "0")
    with pytest.raises(SettingsError, match="KAFKA_REPLICATION_FACTOR must be at least 1"):
        load_settings()
