"""samt124 against a broker that wants SASL/PLAIN: publish, route, read lag, and a clear refusal.

The broker is samt124's own local one, on ports of its own, with the optional SASL_PLAINTEXT
listener (``local_kafka_sasl_port``); every client below talks to that listener only.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from producers.publisher import Publisher
from samt124 import wire
from samt124.events import RequestReferred
from samt124.kafka_admin import ensure_topics
from samt124.local import kafka
from samt124.settings import Settings
from samt124.topic_reader import read_topics
from samt124.topics import Topics
from streams.app import group_id
from tests.chaos.harness import free_port
from tests.integration.pipeline import env_for, start, submission, wait_for

REPO = Path(__file__).resolve().parents[2]
USER, PASSWORD = "samt124-worker", "s3cret-Tehran"


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """Settings whose clients go through the SASL listener of a broker of this module's own."""
    home = tmp_path_factory.mktemp("sasl")
    broker = Settings(
        home=home,
        cache=REPO / ".samt124" / "cache",
        topic_namespace="sasl",
        local_kafka_port=free_port(),
        local_controller_port=free_port(),
        local_kafka_sasl_port=free_port(),
        kafka_sasl_username=USER,
        kafka_sasl_password=SecretStr(PASSWORD),
    )
    kafka.up(broker, timeout=180)
    try:
        yield broker.model_copy(
            update={
                "kafka_bootstrap": f"127.0.0.1:{broker.local_kafka_sasl_port}",
                "kafka_security_protocol": "SASL_PLAINTEXT",
                "kafka_sasl_mechanism": "PLAIN",
            }
        )
    finally:
        kafka.down(broker)


@pytest.mark.integration
def test_publish_route_and_lag_through_sasl(secured: Settings, tmp_path: Path) -> None:
    ensure_topics(secured)
    request = submission(province="IR-30", category="IND-PERMIT")
    with Publisher(secured) as publisher:
        publisher.publish(request)
    worker = start(secured, "worker", log=tmp_path / "worker.log")
    try:
        topics = Topics(secured.topic_namespace)
        referrals = wait_for(
            lambda: [
                r
                for r in read_topics(secured, [topics.province("IR-30")], timeout=30)
                if isinstance(wire.decode(r.value), RequestReferred)
            ],
            120,
            "the referral, through the SASL listener",
        )
        assert wire.decode(referrals[0].value).request_id == request.request_id
        lag = wait_for(
            lambda: _lag(secured, group_id(secured)),
            60,
            "the worker's group in samt124 lag",
        )
        assert lag["group"] == group_id(secured)
        assert not lag.get("error"), lag
    finally:
        worker.stop()
    assert "SaslAuthenticationFailed" not in worker.output()


def _lag(settings: Settings, group: str) -> dict[str, object] | None:
    result = subprocess.run(
        [sys.executable, "-m", "samt124.cli", "lag", "--group", group, "--json"],
        env=env_for(settings),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    try:
        groups = json.loads(result.stdout)["groups"]
    except (json.JSONDecodeError, KeyError):
        return None
    found = [g for g in groups if g["group"] == group and g["partitions"]]
    return found[0] if found else None


@pytest.mark.integration
def test_a_wrong_password_is_refused_with_a_clear_error(secured: Settings) -> None:
    wrong = secured.model_copy(update={"kafka_sasl_password": SecretStr("not-the-password")})
    result = subprocess.run(
        [sys.executable, "-m", "samt124.cli", "lag", "--json"],
        env=env_for(wrong),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode != 0
    assert "Traceback" not in result.stderr, result.stderr[-2000:]
    assert "auth" in (result.stdout + result.stderr).lower(), result.stderr[-2000:]
