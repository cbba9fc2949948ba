"""docker-compose.yml and the Dockerfile, checked by reading them (no Docker engine runs here)."""

from __future__ import annotations

import importlib
import json
import re
from pathlib import Path

import pytest
import yaml
from click import Group

from coupon import create_app, settings
from coupon.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES: dict = COMPOSE["services"]
APP_SERVICES = {name: s for name, s in SERVICES.items() if "build" in s}
ENTRY_POINTS = {"gunicorn", "rq", "rqscheduler", "rq-dashboard", "python", "sh", "flask"}


def _config_env_vars() -> set[str]:
    return {name.upper() for name in Settings.model_fields}


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
    assert settings.of(create_app()).app_env == "production"


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
    for dotted in re.findall(r"--worker-class ([\w.]+)", text):
        module, _, attr = dotted.rpartition(".")
        assert hasattr(importlib.import_module(module), attr), dotted
    cli: Group = create_app({"APP_ENV": "test"}).cli
    for command in re.findall(r"flask --app wsgi ([\w-]+)", text):
        assert command in cli.list_commands(None) or command == "db", command  # type: ignore[arg-type]


def test_dockerfile_installs_the_pinned_requirements_and_runs_unprivileged() -> None:
    dockerfile = (ROOT / "docker" / "Dockerfile").read_text()
    assert "requirements/base.txt" in dockerfile and "USER app" in dockerfile
    assert "API_HOST=0.0.0.0" in dockerfile  # gunicorn binds 127.0.0.1 unless told otherwise
    for path in ("wsgi.py", "gunicorn.conf.py", "coupon/", "workers/", "migrations/"):
        assert path in dockerfile, path


# Prometheus and Grafana: the scrape targets are real services and ports, and the dashboard asks only for metrics
# the code exports.

PROMETHEUS = yaml.safe_load((ROOT / "docker" / "prometheus" / "prometheus.yml").read_text())
DASHBOARD = json.loads((ROOT / "docker" / "grafana" / "dashboards" / "coupon-rush.json").read_text())
# Rows group the panels; only the others hold queries.
QUERY_PANELS = [panel for panel in DASHBOARD["panels"] if panel["type"] != "row"]
PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "offset", "bool"}


def _mounts(service: str) -> dict[str, str]:
    """container path → host path of a service's bind mounts."""
    out = {}
    for volume in SERVICES[service].get("volumes", []):
        host, container = volume.split(":")[:2]
        out[container] = host
    return out


def test_prometheus_and_grafana_run_with_their_config_mounted() -> None:
    for name in ("prometheus", "grafana"):
        assert "healthcheck" in SERVICES[name] and SERVICES[name]["image"].split(":")[1]
        for _container, host in _mounts(name).items():
            if host.startswith("./"):
                assert (ROOT / host).exists(), f"{name} mounts a missing {host}"
    assert _mounts("prometheus")["/etc/prometheus/prometheus.yml"] == "./docker/prometheus/prometheus.yml"
    assert _mounts("prometheus")["/etc/prometheus/alerts.yml"] == "./docker/prometheus/alerts.yml"
    assert "--config.file=/etc/prometheus/prometheus.yml" in SERVICES["prometheus"]["command"]
    assert "?" in SERVICES["grafana"]["environment"]["GF_SECURITY_ADMIN_PASSWORD"]  # no default password
    assert set(COMPOSE["volumes"]) >= {"prometheus-data", "grafana-data"}


def test_prometheus_scrapes_the_api_and_every_consumer_where_they_listen() -> None:
    jobs = {job["job_name"]: job for job in PROMETHEUS["scrape_configs"]}
    assert set(jobs) >= {"api", "consumer", "rq-worker"}
    app = create_app({"APP_ENV": "test"})
    assert any(rule.rule == "/metrics" for rule in app.url_map.iter_rules())
    (api_target,) = jobs["api"]["static_configs"][0]["targets"]
    host, port = api_target.split(":")
    assert host == "api" and port == str(SERVICES["api"]["environment"]["API_PORT"])
    assert jobs["api"].get("metrics_path", "/metrics") == "/metrics"
    (dns,) = jobs["consumer"]["dns_sd_configs"]
    consumer_env = SERVICES["consumer"]["environment"]
    assert dns["names"] == ["consumer"] and str(dns["port"]) == str(consumer_env["CONSUMER_METRICS_PORT"])
    assert consumer_env["CONSUMER_METRICS_HOST"] == "0.0.0.0"  # reachable from the prometheus container
    (dns,) = jobs["rq-worker"]["dns_sd_configs"]
    worker_env = SERVICES["rq-worker"]["environment"]
    assert dns["names"] == ["rq-worker"] and str(dns["port"]) == str(worker_env["RQ_WORKER_METRICS_PORT"])
    assert worker_env["RQ_WORKER_METRICS_HOST"] == "0.0.0.0"


def test_grafana_provisioning_points_at_prometheus_and_the_dashboard() -> None:
    prov = ROOT / "docker" / "grafana" / "provisioning"
    (source,) = yaml.safe_load((prov / "datasources" / "prometheus.yml").read_text())["datasources"]
    assert (
        source["type"] == "prometheus" and source["url"] == "http://prometheus:9090" and source["uid"] == "prometheus"
    )
    (provider,) = yaml.safe_load((prov / "dashboards" / "coupon-rush.yml").read_text())["providers"]
    assert _mounts("grafana")[provider["options"]["path"]] == "./docker/grafana/dashboards"
    assert _mounts("grafana")["/etc/grafana/provisioning"] == "./docker/grafana/provisioning"


def _family_names(families) -> set[str]:
    suffixes = {
        "counter": ("_total", "_created"),
        "histogram": ("_bucket", "_sum", "_count", "_created"),
        "summary": ("_sum", "_count", "_created"),
        "gauge": ("",),
        "info": ("_info",),
    }
    return {f.name + s for f in families for s in suffixes.get(f.type, ("",))}


def _exported_metric_names() -> set[str]:
    """What the API and the consumer really export: coupon.observability.instruments, the flask exporter, the
    scrape-time gauges."""
    from flask import Flask
    from prometheus_client import REGISTRY, CollectorRegistry
    from prometheus_flask_exporter import PrometheusMetrics

    import coupon.observability.instruments  # noqa: F401  (registers its metrics)
    from coupon.http.readiness_metrics import DependencyGauge
    from workers.gauges import FailureCounts, StockGauges
    from workers.rq_metrics import GroupLag

    names = _family_names(REGISTRY.collect())
    registry = CollectorRegistry()
    PrometheusMetrics(Flask("probe"), registry=registry, group_by="endpoint")
    names |= _family_names(registry.collect())
    for collector in (FailureCounts(None), StockGauges(None), DependencyGauge(), GroupLag(None)):
        names |= _family_names(collector.describe())
    return names


def _metrics_in(expr: str) -> set[str]:
    expr = re.sub(r'"[^"]*"', "", expr)
    expr = re.sub(r"\{[^}]*\}|\[[^\]]*\]", "", expr)
    expr = re.sub(r"\b(?:by|without|on|ignoring)\s*\([^)]*\)", "", expr)
    tokens = re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*(?!\s*\()\b", expr)
    return {t for t in tokens if t not in PROMQL_WORDS and not re.fullmatch(r"\d.*", t)} - _functions(expr)


def _functions(expr: str) -> set[str]:
    return set(re.findall(r"([a-zA-Z_]+)\s*\(", expr))


def test_every_dashboard_query_uses_exported_metrics_only() -> None:
    exported = _exported_metric_names()
    assert "coupon_issue_requests_total" in exported and "flask_http_request_duration_seconds_bucket" in exported
    exprs = [t["expr"] for panel in QUERY_PANELS for t in panel["targets"]]
    assert exprs
    for expr in exprs:
        used = _metrics_in(expr)
        assert used, f"no metric found in {expr}"
        assert used <= exported, f"{expr} uses {sorted(used - exported)}, which nothing exports"
    endpoints = set(re.findall(r'endpoint="([^"]+)"', " ".join(exprs)))
    assert endpoints <= set(create_app({"APP_ENV": "test"}).view_functions), endpoints


def test_the_dashboard_has_the_panels_operators_expect() -> None:
    text = " ".join(t["expr"] for panel in QUERY_PANELS for t in panel["targets"])
    for needle in (
        "coupon_issue_requests_total",
        "histogram_quantile(0.95",
        "histogram_quantile(0.99",
        "coupon_stock_remaining",
        "coupon_consumer_lag",
        'coupon_failures{status=~"PENDING|DEAD"}',
        "coupon_gate_batch_seconds_bucket",
        "coupon_kafka_produce_seconds_bucket",
        # The sale as an operator watches it: time to sell out, 202s against the stock left, outcome unknown and
        # the sweeper, refusals, live-stock streams.
        "coupon_stock_sold_out_seconds",
        'coupon_issue_requests_total{outcome="accepted"}',
        'coupon_issue_requests_total{outcome="unconfirmed"}',
        "coupon_sweeper_settled_total",
        "coupon_admission_refused_total",
        "coupon_stock_streams",
        "coupon_consumer_group_lag",
    ):
        assert needle in text, needle
    for panel in QUERY_PANELS:
        assert panel["datasource"]["uid"] == "prometheus"
        assert all(t["datasource"]["uid"] == "prometheus" for t in panel["targets"]), panel["title"]


def test_the_dashboard_is_valid_for_provisioning() -> None:
    """What Grafana's file provisioning needs: a uid and title, unique panel ids, every panel placed on the 24-column
    grid without overlapping another, and each query with its own refId."""
    assert DASHBOARD["uid"] == "coupon-rush" and DASHBOARD["title"] and isinstance(DASHBOARD["schemaVersion"], int)
    ids = [panel["id"] for panel in DASHBOARD["panels"]]
    assert len(ids) == len(set(ids)), ids
    cells: set[tuple[int, int]] = set()
    for panel in DASHBOARD["panels"]:
        pos = panel["gridPos"]
        assert pos["x"] + pos["w"] <= 24 and pos["w"] > 0 and pos["h"] > 0, panel["title"]
        mine = {(x, y) for x in range(pos["x"], pos["x"] + pos["w"]) for y in range(pos["y"], pos["y"] + pos["h"])}
        assert not mine & cells, f"{panel['title']} overlaps another panel"
        cells |= mine
        if panel["type"] == "row":
            assert pos["h"] == 1 and pos["w"] == 24 and panel["panels"] == [], panel["title"]
        else:
            refs = [t["refId"] for t in panel["targets"]]
            assert refs and len(refs) == len(set(refs)), panel["title"]


def test_app_db_user_is_least_privilege_and_only_migrate_changes_the_schema() -> None:
    init = (ROOT / "docker" / "mysql" / "01-least-privilege.sh").read_text()
    assert "GRANT SELECT, INSERT, UPDATE, DELETE ON" in init and "REVOKE ALL PRIVILEGES" in init
    assert any("docker-entrypoint-initdb.d" in v for v in SERVICES["mysql"]["volumes"])
    assert "coupon_migrate:" in SERVICES["migrate"]["environment"]["DATABASE_URL"]
    for name, service in APP_SERVICES.items():
        if name != "migrate":
            assert "coupon_migrate" not in service["environment"]["DATABASE_URL"], name


# The `ha` profile: a three-broker KRaft Kafka (kafka-1..3) the app can be pointed at.

HA_BROKERS = ("kafka-1", "kafka-2", "kafka-3")


def test_the_ha_profile_is_a_three_broker_kraft_cluster() -> None:
    voters = {f"{n}@kafka-{n}:9093" for n in (1, 2, 3)}
    cluster_ids = set()
    for number, name in enumerate(HA_BROKERS, start=1):
        service = SERVICES[name]
        env = service["environment"]
        assert service["profiles"] == ["ha"], name
        assert service["image"] == SERVICES["kafka"]["image"], "the same Kafka as the single broker"
        assert env["KAFKA_PROCESS_ROLES"] == "broker,controller", name  # KRaft, combined mode
        assert env["KAFKA_NODE_ID"] == number, name
        assert set(env["KAFKA_CONTROLLER_QUORUM_VOTERS"].split(",")) == voters, name
        assert env["KAFKA_ADVERTISED_LISTENERS"] == f"PLAINTEXT://{name}:9092", name
        assert env["KAFKA_CONTROLLER_LISTENER_NAMES"] == "CONTROLLER"
        assert "CONTROLLER://:9093" in env["KAFKA_LISTENERS"] and "PLAINTEXT://:9092" in env["KAFKA_LISTENERS"]
        # Durable defaults: three copies, two in sync for acks=all, never an out-of-sync leader.
        assert env["KAFKA_DEFAULT_REPLICATION_FACTOR"] == 3 and env["KAFKA_MIN_INSYNC_REPLICAS"] == 2
        assert env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == 3
        assert env["KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR"] == 3
        assert env["KAFKA_TRANSACTION_STATE_LOG_MIN_ISR"] == 2
        assert str(env["KAFKA_UNCLEAN_LEADER_ELECTION_ENABLE"]).lower() == "false"
        assert "healthcheck" in service, name
        assert any(v == f"{name}-data:/var/lib/kafka/data" for v in service["volumes"]), name
        assert f"{name}-data" in COMPOSE["volumes"], name
        cluster_ids.add(env["CLUSTER_ID"])
    assert len(cluster_ids) == 1, "every node must be formatted with the same cluster id"
    assert "profiles" not in SERVICES["kafka"], "the single broker stays the default"


def test_the_app_can_be_pointed_at_the_ha_cluster() -> None:
    for name, service in APP_SERVICES.items():
        env = service["environment"]
        assert env["KAFKA_BOOTSTRAP_SERVERS"] == "${KAFKA_BOOTSTRAP_SERVERS:-kafka:9092}", name
        assert env["KAFKA_REPLICATION_FACTOR"] == "${KAFKA_REPLICATION_FACTOR:-1}", name
        assert env["KAFKA_MIN_INSYNC_REPLICAS"] == "${KAFKA_MIN_INSYNC_REPLICAS:-1}", name
    needs = SERVICES["migrate"]["depends_on"]
    for broker in HA_BROKERS:
        # Waits for the ha brokers when the profile is on; without it they don't exist and are skipped.
        assert needs[broker] == {"condition": "service_healthy", "required": False}, broker
