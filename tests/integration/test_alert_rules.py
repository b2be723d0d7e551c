"""The shipped alert rules, checked and unit-tested by Prometheus' own ``promtool`` (Debian's
``prometheus`` package, installed by ``scripts/system-deps.sh``)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration
RULES = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"


def promtool() -> str:
    found = shutil.which("promtool")
    assert found, (
        "promtool is missing: install Debian's prometheus package (scripts/system-deps.sh)"
    )
    return found


def test_the_rules_file_is_valid() -> None:
    done = subprocess.run(
        [promtool(), "check", "rules", str(RULES / "rules.yml")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS: 9 rules found" in done.stdout


def test_every_alert_fires_when_it_should_and_only_then() -> None:
    done = subprocess.run(
        [promtool(), "test", "rules", "rules_test.yml"],
        cwd=RULES,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def test_every_alert_of_the_rules_file_has_a_unit_test() -> None:
    import yaml

    rules = yaml.safe_load((RULES / "rules.yml").read_text())
    alerts = {r["alert"] for g in rules["groups"] for r in g["rules"] if "alert" in r}
    tests = yaml.safe_load((RULES / "rules_test.yml").read_text())["tests"]
    tested = {
        case["alertname"]
        for test in tests
        for case in test.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }
    assert alerts == tested
