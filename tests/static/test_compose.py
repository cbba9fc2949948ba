"""docker-compose.yml and the Dockerfile, checked by reading them (no Docker engine runs here)."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from click import Group

from coupon import create_app

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES: dict = COMPOSE["services"]
APP_SERVICES = {name: s for name, s in SERVICES.items() if "build" in s}
ENTRY_POINTS = {"gunicorn", "rq", "rqscheduler", "rq-dashboard", "python", "sh", "flask"}


def _config_env_vars() -> set[str]:
    source = (ROOT / "coupon" / "config.py").read_text()
    return set(re.findall(r'_(?:env|int)\("([A-Z_]+)"', source)) | set(re.findall(r'environ\.get\("([A-Z_]+)"', source))


def _argv(service: dict) -> list[str]:
    command = service.get("command") or ["gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"]
    return command if isinstance(command, list) else command.split()


def test_every_service_has_an_image_or_a_build() -> None:
    for name, service in SERVICES.items():
        assert "image" in service or "build" in service, name


def test_the_stack_is_complete() -> None:
    assert {"mysql", "redis", "kafka", "api", "consumer", "rq-worker", "rq-scheduler", "rq-dashboard"} <= set(SERVICES)
    assert SERVICES["mysql"]["image"].startswith("mysql:8")
    assert SERVICES["redis"]["image"].startswith("redis:7")
    assert SERVICES["kafka"]["image"].startswith("apache/kafka:4")
    assert SERVICES["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"  # KRaft


@pytest.mark.parametrize("name", sorted(APP_SERVICES))
def test_app_services_get_every_variable_the_app_reads(name: str) -> None:
    env = APP_SERVICES[name]["environment"]
    missing = _config_env_vars() - set(env)
    assert not missing, f"{name} lacks {sorted(missing)}"
    assert env["APP_ENV"] == "production" and "?" in env["JWT_SECRET_KEY"], "secrets must be required, not defaulted"


def test_production_config_accepts_the_compose_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    env = dict(APP_SERVICES["api"]["environment"])
    env["JWT_SECRET_KEY"] = "x" * 48
    env["DATABASE_URL"] = "mysql+pymysql://coupon:s3cret@mysql:3306/coupon"
    for key, value in env.items():
        if "${" not in str(value):
            monkeypatch.setenv(key, str(value))
    monkeypatch.setenv("JWT_SECRET_KEY", env["JWT_SECRET_KEY"])
    monkeypatch.setenv("DATABASE_URL", env["DATABASE_URL"])
    assert create_app().config["APP_ENV"] == "production"


def test_host_ports_do_not_clash() -> None:
    published = []
    for service in SERVICES.values():
        for port in service.get("ports", []):
            published.append(str(port).rsplit(":", 1)[0])
    assert len(published) == len(set(published)), published


def test_dependencies_exist_and_have_health_checks() -> None:
    for name, service in SERVICES.items():
        for dep, rule in (service.get("depends_on") or {}).items():
            assert dep in SERVICES, f"{name} depends on unknown {dep}"
            if rule.get("condition") == "service_healthy":
                assert "healthcheck" in SERVICES[dep], f"{dep} needs a healthcheck"
    for name in ("mysql", "redis", "kafka", "api"):
        assert "healthcheck" in SERVICES[name], name


def test_data_is_kept_in_volumes_and_redis_persists() -> None:
    assert any("/var/lib/mysql" in v for v in SERVICES["mysql"]["volumes"])
    assert any("/var/lib/kafka/data" in v for v in SERVICES["kafka"]["volumes"])
    assert "--appendonly" in SERVICES["redis"]["command"] and "yes" in SERVICES["redis"]["command"]
    assert set(COMPOSE["volumes"]) >= {"mysql-data", "kafka-data", "redis-data"}


@pytest.mark.parametrize("name", sorted(APP_SERVICES))
def test_commands_name_real_entry_points(name: str) -> None:
    argv = _argv(APP_SERVICES[name])
    assert argv[0] in ENTRY_POINTS, argv
    text = " ".join(argv)
    for module in re.findall(r"python -m ([\w.]+)", text):
        assert (ROOT / (module.replace(".", "/") + ".py")).exists(), module
    if "wsgi:app" in text:
        assert "app = create_app()" in (ROOT / "wsgi.py").read_text()
    cli: Group = create_app({"APP_ENV": "test"}).cli
    for command in re.findall(r"flask --app wsgi ([\w-]+)", text):
        assert command in cli.list_commands(None) or command == "db", command  # type: ignore[arg-type]


def test_dockerfile_installs_the_pinned_requirements_and_runs_unprivileged() -> None:
    dockerfile = (ROOT / "docker" / "Dockerfile").read_text()
    assert "requirements/base.txt" in dockerfile and "USER app" in dockerfile
    assert "API_HOST=0.0.0.0" in dockerfile  # gunicorn binds 127.0.0.1 unless told otherwise
    for path in ("wsgi.py", "gunicorn.conf.py", "coupon/", "workers/", "migrations/"):
        assert path in dockerfile, path


def test_app_db_user_is_least_privilege_and_only_migrate_changes_the_schema() -> None:
    init = (ROOT / "docker" / "mysql" / "01-least-privilege.sh").read_text()
    assert "GRANT SELECT, INSERT, UPDATE, DELETE ON" in init and "REVOKE ALL PRIVILEGES" in init
    assert any("docker-entrypoint-initdb.d" in v for v in SERVICES["mysql"]["volumes"])
    assert "coupon_migrate:" in SERVICES["migrate"]["environment"]["DATABASE_URL"]
    for name, service in APP_SERVICES.items():
        if name != "migrate":
            assert "coupon_migrate" not in service["environment"]["DATABASE_URL"], name
