"""With no broker and no ClickHouse server, every command that needs one says so within 5 s.

Each command runs as a new process, as a person would run it, with the services at addresses
where nothing listens (or, for the timeout, where nothing answers at all). The answer must be
two lines (what it could not reach, at which address; what to do), with none of the clients'
own retry warnings and no traceback. The worker's refusal of topics with another partition count
follows the rule of usage mistakes: one line, exit 2.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from samt124.settings import Settings, parse_clickhouse_url
from tests.integration.conftest import Services
from tests.samples import submitted_line

REPO = Path(__file__).resolve().parents[2]
LIMIT = 5.0  # seconds, start-up included
NOWHERE_KAFKA = "127.0.0.1:1"
NOWHERE_CLICKHOUSE = "clickhouse://default:@127.0.0.1:2/x"
EVENT = submitted_line("req-down-1")


def samt124(
    tmp_path: Path, *args: str, **env: str
) -> tuple[subprocess.CompletedProcess[str], float]:
    environment = {
        key: value for key, value in os.environ.items() if not key.startswith("SAMT124_")
    }
    environment.update(
        {
            "SAMT124_HOME": str(tmp_path / "home"),
            "SAMT124_KAFKA_BOOTSTRAP": NOWHERE_KAFKA,
            "SAMT124_CLICKHOUSE_URL": NOWHERE_CLICKHOUSE,
            "PYTHONPATH": str(REPO),
            **env,
        }
    )
    environment = {key: value for key, value in environment.items() if value}
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "samt124.cli", *args],
        env=environment,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return result, time.monotonic() - started


KAFKA = ("Kafka", NOWHERE_KAFKA, "SAMT124_KAFKA_BOOTSTRAP")
CLICKHOUSE = ("ClickHouse", "127.0.0.1:2", "SAMT124_CLICKHOUSE_URL")
COMMANDS = {
    "publish": (["publish", "good.jsonl"], KAFKA),
    "simulate": (["simulate", "--count", "10"], KAFKA),
    "lag": (["lag"], KAFKA),
    "init": (["init"], KAFKA),
    "sink": (["sink", "--until-idle", "1"], KAFKA),
    "worker": (["worker"], KAFKA),
    "verify": (["verify"], KAFKA),
    "report": (["report", "volume"], CLICKHOUSE),
    "sql": (["sql", "SELECT 1"], CLICKHOUSE),
}


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_a_command_without_its_service_says_so_within_the_limit(
    tmp_path: Path, command: str
) -> None:
    (tmp_path / "good.jsonl").write_text(json.dumps(EVENT, ensure_ascii=False) + "\n", "utf-8")
    argv, (service, address, setting) = COMMANDS[command]
    result, took = samt124(tmp_path, *argv)
    assert result.returncode == 1, result.stderr
    assert took < LIMIT, f"{took:.1f} s"
    assert "Traceback" not in result.stderr
    assert "WARNING" not in result.stderr, result.stderr  # no client retry warnings
    cause, remedy = result.stderr.strip().splitlines()
    assert cause.startswith(f"samt124 {command}: cannot reach {service} at {address}: "), cause
    assert setting in remedy, remedy
    assert result.stdout == ""


def test_the_local_broker_missing_says_how_to_start_it(tmp_path: Path) -> None:
    result, took = samt124(
        tmp_path, "lag", SAMT124_KAFKA_BOOTSTRAP="", SAMT124_LOCAL_KAFKA_PORT="1"
    )
    assert result.returncode == 1, result.stderr
    assert took < LIMIT
    cause, remedy = result.stderr.strip().splitlines()
    assert cause == "samt124 lag: cannot reach Kafka at 127.0.0.1:1: connection refused"
    assert "`samt124 local up kafka`" in remedy


def test_an_address_that_never_answers_is_given_up_after_the_connect_timeout(
    tmp_path: Path,
) -> None:
    # 192.0.2.1 (TEST-NET-1) is never routed: the connection is refused by the network at
    # once or is never answered; either way the command must not wait past the timeout
    result, took = samt124(
        tmp_path, "lag", SAMT124_KAFKA_BOOTSTRAP="192.0.2.1:9092", SAMT124_CONNECT_TIMEOUT="1"
    )
    assert result.returncode == 1, result.stderr
    assert took < 1 + 3.0, f"{took:.1f} s"
    cause, _ = result.stderr.strip().splitlines()
    assert cause.startswith("samt124 lag: cannot reach Kafka at 192.0.2.1:9092: "), cause


def test_debug_keeps_the_traceback(tmp_path: Path) -> None:
    result, _ = samt124(tmp_path, "--debug", "sql", "SELECT 1")
    assert result.returncode == 1
    assert "Traceback" in result.stderr
    assert "cannot reach ClickHouse at 127.0.0.1:2" in result.stderr


def test_the_probe_knows_a_broker_from_another_server(services: Services) -> None:
    from samt124 import reach

    broker = reach.bootstrap_addresses(services.base.bootstrap)
    assert reach.unreachable(broker, 2.0, kafka=True) is None
    clickhouse = parse_clickhouse_url(services.clickhouse_server)
    other = [(clickhouse.host, clickhouse.port)]
    assert reach.unreachable(other, 1.0, kafka=True) == reach.NOT_KAFKA


def test_a_worker_on_topics_of_another_partition_count_is_a_usage_mistake(
    settings: Settings, tmp_path: Path
) -> None:
    from samt124.kafka.admin import ensure_topics
    from tests.integration.pipeline import env_for

    ensure_topics(settings.model_copy(update={"partitions": 2}))
    result = subprocess.run(
        [sys.executable, "-m", "samt124.cli", "worker"],
        env=env_for(settings),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    (line,) = result.stderr.strip().splitlines()
    namespace = settings.topic_namespace
    assert line.startswith(f"samt124 worker: {namespace}.intake has 2, {namespace}.sla has 2")
    assert "SAMT124_PARTITIONS is 4: set SAMT124_PARTITIONS" in line
