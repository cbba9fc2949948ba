"""scripts/prometheus.sh sourced, without starting Prometheus: the config it writes for `make run` names every
process run.sh starts (the API, each consumer on its port, the rq worker) and the alerting rules, and promtool
accepts it. It is written to a temporary directory, not under .local/."""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "prometheus.sh"


def test_the_native_config_follows_run_sh_ports(tmp_path: Path) -> None:
    script = (
        f'source "{SCRIPT}"\n'
        f'PROM_DIR="{tmp_path}"; CONFIG="{tmp_path}/prometheus.yml"; LOG_DIR="{tmp_path}"\n'
        "write_config\n"
    )
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "API_PORT": "8010",
        "CONSUMERS": "3",
        "CONSUMER_METRICS_PORT": "9210",
        "RQ_WORKER_METRICS_PORT": "9310",
        "PROMETHEUS_INTERVAL": "10s",
    }
    out = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60, env=env)
    assert out.returncode == 0, out.stdout + out.stderr
    config = yaml.safe_load((tmp_path / "prometheus.yml").read_text())
    targets = {job["job_name"]: job["static_configs"][0]["targets"] for job in config["scrape_configs"]}
    assert targets == {
        "api": ["127.0.0.1:8010"],
        "consumer": ["127.0.0.1:9210", "127.0.0.1:9211", "127.0.0.1:9212"],
        "rq-worker": ["127.0.0.1:9310"],
    }
    assert config["global"]["scrape_interval"] == "10s" and config["global"]["evaluation_interval"] == "10s"
    assert config["rule_files"] == [str(ROOT / "docker" / "prometheus" / "alerts.yml")]
