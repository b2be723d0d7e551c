"""``samt124 dlq`` and the ``--metrics`` flags: a usage mistake is one line and exit 2, found
before anything connects (nothing listens at the addresses given); a service away is exit 1."""

from __future__ import annotations

from pathlib import Path

import pytest

from samt124 import cli


@pytest.fixture(autouse=True)
def nowhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SAMT124_DEBUG", raising=False)
    monkeypatch.setenv("SAMT124_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("SAMT124_KAFKA_BOOTSTRAP", "127.0.0.1:1")
    monkeypatch.setenv("SAMT124_CLICKHOUSE_URL", "clickhouse://default:@127.0.0.1:2/x")
    monkeypatch.setenv("SAMT124_CONNECT_TIMEOUT", "0.5")


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["dlq", "show", "abc"], "argument id: expected PARTITION:OFFSET"),
        (["dlq", "show", "1:-2"], "argument id: expected PARTITION:OFFSET"),
        (["dlq", "replay", "1:2"], "say what the fix is: --file FIXED.json, or --set FIELD=VALUE"),
        (["dlq", "replay", "1:2", "--set", "province"], "argument --set: expected FIELD=VALUE"),
        (["dlq", "replay", "1:2", "--file", "missing.json"], "no such file: missing.json"),
        (["dlq", "list", "--kind", "nope"], "argument --kind: invalid choice"),
        (["dlq", "list", "--limit", "0"], "argument --limit: must be 1 or more"),
        (["dlq", "list", "--since", "yesterday"], "argument --since"),
        (["dlq"], "required"),
        (["sink", "--metrics", "nope"], "argument --metrics: expected HOST:PORT"),
        (["worker", "--metrics", "0.0.0.0:70000"], "argument --metrics: a port is 1..65535"),
    ],
)
def test_usage_mistakes(argv: list[str], said: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert said in err
    assert len(err.strip().splitlines()) == 1


def test_a_metrics_port_setting_that_is_no_number_is_a_usage_mistake(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SAMT124_METRICS_PORT", "abc")
    assert cli.main(["dlq", "list"]) == 2
    assert "SAMT124_METRICS_PORT" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv", [["dlq", "list"], ["dlq", "show", "0:1"], ["report", "dead-letters"]]
)
def test_clickhouse_away_is_a_runtime_failure(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(argv) == 1
    err = capsys.readouterr().err
    assert "127.0.0.1:2" in err
    assert "Traceback" not in err
