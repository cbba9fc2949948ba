"""The alerting rules (docker/prometheus/alerts.yml): promtool checks them and runs their unit tests, each alert has
a firing and a quiet case and a runbook section, each metric they name is exported, and the compose Prometheus config
is what scripts/prometheus_config.py generates."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from tests.static.test_compose import _exported_metric_names, _metrics_in
from tests.static.test_readme import _anchors

ROOT = Path(__file__).resolve().parents[2]
PROM = ROOT / "docker" / "prometheus"
RULES = yaml.safe_load((PROM / "alerts.yml").read_text())
ALERTS = {rule["alert"]: rule for group in RULES["groups"] for rule in group["rules"] if "alert" in rule}
UNIT_TESTS = yaml.safe_load((PROM / "alerts.test.yml").read_text())


def _promtool() -> str:
    found = shutil.which("promtool")
    assert found, "promtool not found: run scripts/prometheus.sh install (apt `prometheus`; scripts/test.sh does)"
    return found


def test_promtool_accepts_the_rules_and_their_unit_tests_pass() -> None:
    for args in (["check", "rules", "alerts.yml"], ["test", "rules", "alerts.test.yml"]):
        out = subprocess.run([_promtool(), *args], cwd=PROM, capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, f"promtool {' '.join(args)}:\n{out.stdout}{out.stderr}"


def test_every_alert_is_tested_firing_and_quiet() -> None:
    fired: set[str] = set()
    quiet: set[str] = set()
    for case in UNIT_TESTS["tests"]:
        for check in case.get("alert_rule_test", []):
            (fired if check.get("exp_alerts") else quiet).add(check["alertname"])
    assert set(ALERTS) <= fired, f"never seen firing: {sorted(set(ALERTS) - fired)}"
    assert set(ALERTS) <= quiet, f"never seen quiet: {sorted(set(ALERTS) - quiet)}"
    assert UNIT_TESTS["rule_files"] == ["alerts.yml"], "the unit tests must test the production rules file"


def test_every_alert_has_a_runbook_section_and_a_reason_for_its_threshold() -> None:
    runbook = (ROOT / "docs" / "RUNBOOK.md").read_text()
    anchors = _anchors(runbook)
    source = (PROM / "alerts.yml").read_text()
    for name, rule in ALERTS.items():
        link = rule["annotations"]["runbook"]
        page, _, anchor = link.partition("#")
        assert page == "docs/RUNBOOK.md" and anchor in anchors, f"{name}: {link} is not a RUNBOOK.md section"
        section = runbook.split(f"## {name}", 1)[1].split("\n## ", 1)[0]
        for part in ("Meaning", "Confirm", "Do"):
            assert f"**{part}.**" in section, f"RUNBOOK.md's {name} lacks **{part}.**"
        assert "```" in section, f"RUNBOOK.md's {name} gives no command to confirm it"
        before = source.split(f"- alert: {name}", 1)[0].rstrip().splitlines()
        assert before[-1].strip().startswith("#"), f"{name}: say why its threshold, in a comment above it"


def test_the_rules_name_only_exported_metrics() -> None:
    exported = _exported_metric_names() | {"up"}
    for name, rule in ALERTS.items():
        used = _metrics_in(re.sub(r"\boffset\s+\w+", "", rule["expr"])) - {"time", "absent"}
        assert used, name
        assert used <= exported, f"{name} uses {sorted(used - exported)}, which nothing exports"


def test_the_compose_config_is_what_the_generator_writes() -> None:
    out = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "prometheus_config.py"), "compose"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert (PROM / "prometheus.yml").read_text() == out.stdout, (
        "docker/prometheus/prometheus.yml differs from the generator: "
        "python scripts/prometheus_config.py compose > docker/prometheus/prometheus.yml"
    )
    config = yaml.safe_load(out.stdout)
    assert config["rule_files"] == ["/etc/prometheus/alerts.yml"]
