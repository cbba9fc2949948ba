"""scripts/services.sh read without running a service: its table of services, the hooks each one provides,
the command line it accepts, and the Kafka configs it renders from the templates in scripts/kafka/.

services.sh only defines its functions when it is sourced, so these run no service, open no port and
write nothing under .local/ (the Kafka configs go to a temporary directory).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SERVICES_SH = ROOT / "scripts" / "services.sh"
COMMON_SH = ROOT / "scripts" / "lib" / "common.sh"


def _bash(script: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", "-c", script],
        capture_output=True,
        text=True,
        timeout=30,
        env={"PATH": "/usr/local/bin:/usr/bin:/bin", **env},
    )


def _sourced(script: str, **env: str) -> str:
    out = _bash(f'source "{SERVICES_SH}"\n{script}', **env)
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout


def test_the_table_lists_the_three_services_in_start_order() -> None:
    out = _sourced(
        'echo "${SERVICES[*]}"; for n in "${SERVICES[@]}"; do '
        'echo "$n ${PORT_VAR[$n]} $(port_of "$n") ${TIMEOUT_VAR[$n]} $(timeout_of "$n") ${PROC_MARKER[$n]}"; done; '
        "echo $(services_reversed)",
        REDIS_PORT="6401",
        DB_PORT="3326",
        KAFKA_PORT="9202",
        KAFKA_TIMEOUT="7",
    )
    assert out.splitlines() == [
        "redis mariadb kafka",
        "redis REDIS_PORT 6401 REDIS_TIMEOUT 60 redis-server",
        "mariadb DB_PORT 3326 DB_TIMEOUT 60 mariadbd",
        "kafka KAFKA_PORT 9202 KAFKA_TIMEOUT 7 kafka.Kafka",
        "kafka mariadb redis",
    ]


def test_every_service_has_the_hooks_the_generic_code_calls() -> None:
    out = _sourced(
        'for n in "${SERVICES[@]}"; do for h in packages start ready wipe; do '
        'declare -F "${n}_$h" >/dev/null || echo "missing ${n}_$h"; done; done'
    )
    assert out == ""


def test_every_command_has_its_function() -> None:
    out = _sourced(
        'for c in "${!CMD_ARGS[@]}"; do declare -F "cmd_$c" >/dev/null || echo "missing cmd_$c"; done; '
        'echo "${!CMD_ARGS[@]}" | tr " " "\\n" | sort | tr "\\n" " "'
    )
    assert out.split() == sorted(["down", "install", "restart", "start", "status", "stop", "up", "wipe"])


@pytest.mark.parametrize(
    "args", [[], ["bogus"], ["up", "redis"], ["start"], ["start", "postgres"], ["stop", "redis", "kafka"]]
)
def test_a_wrong_command_line_prints_the_usage_and_exits_2(args: list[str]) -> None:
    # Refused before it takes the lock or looks at a port.
    out = subprocess.run([str(SERVICES_SH), *args], capture_output=True, text=True, timeout=30)
    assert out.returncode == 2 and "usage: scripts/services.sh up|install|down|status|wipe" in out.stderr, out


def test_the_kafka_configs_follow_the_ports_and_paths(tmp_path: Path) -> None:
    _sourced(
        f'KAFKA_DIR="{tmp_path}/kafka"; KAFKA_DATA="{tmp_path}/kafka/data"; LOG_DIR="{tmp_path}/log"; '
        "kafka_write_config",
        KAFKA_PORT="9202",
        KAFKA_CONTROLLER_PORT="9203",
    )
    server = (tmp_path / "kafka" / "server.properties").read_text()
    assert "listeners=PLAINTEXT://127.0.0.1:9202,CONTROLLER://127.0.0.1:9203\n" in server
    assert "controller.quorum.bootstrap.servers=127.0.0.1:9203\n" in server
    assert f"log.dirs={tmp_path}/kafka/data\n" in server
    log4j = (tmp_path / "kafka" / "log4j2.properties").read_text()
    assert f"appender.file.fileName = {tmp_path}/log/kafka.log\n" in log4j
    assert "logger.network.name = kafka.network.RequestChannel$\n" in log4j  # a literal $, not expanded
    assert "rootLogger.appenderRef.err.ref = STDERR" in (tmp_path / "kafka" / "log4j2-tools.properties").read_text()
    for name in ("server.properties", "log4j2.properties", "log4j2-tools.properties"):
        text = (tmp_path / "kafka" / name).read_text()
        assert "@" not in text, name  # every placeholder filled in
        assert text == text.rstrip("\n") + "\n", name  # ends with exactly one newline, like the template


def test_render_template_replaces_text_literally_and_refuses_leftovers(tmp_path: Path) -> None:
    template = tmp_path / "t.in"
    template.write_text("a=@A@\nb=@B@ $HOME `x` \\n\n\n")
    out = _bash(f'source "{COMMON_SH}"; render_template "{template}" "{tmp_path}/t" A="x&y/z\\\\1" B="*"')
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "t").read_text() == "a=x&y/z\\1\nb=* $HOME `x` \\n\n\n"
    out = _bash(f'source "{COMMON_SH}"; LOG_PREFIX=[t]; render_template "{template}" "{tmp_path}/u" A=1')
    assert out.returncode == 1 and "no value for the placeholder @B@" in out.stderr, out.stderr
    assert not (tmp_path / "u").exists()
