"""samt124 against a secured broker: publish, route and read lag through SASL (PLAIN and SCRAM)
and through mutual TLS, and a clear refusal for a client that cannot authenticate.

The broker is samt124's own local one, on ports of its own, with both optional listeners:
SASL_PLAINTEXT (``local_kafka_sasl_port``) and SSL asking for a client certificate
(``local_kafka_ssl_port``, certificates made by ``samt124 local up``). Each test's clients talk
to one of those listeners only.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from devtools.local import kafka, tls
from producers.publisher import Publisher
from samt124.contract import wire
from samt124.domain.events import RequestReferred
from samt124.kafka.admin import ensure_topics
from samt124.kafka.reader import read_topics
from samt124.kafka.topics import Topics
from samt124.settings import Settings
from streams.app import group_id
from tests.chaos.harness import free_port
from tests.integration.pipeline import env_for, start, submission, wait_for

REPO = Path(__file__).resolve().parents[2]
USER, PASSWORD = "samt124-worker", "s3cret-Tehran"


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """A broker of this module's own with a SASL and a TLS listener besides PLAINTEXT."""
    settings = Settings(
        home=tmp_path_factory.mktemp("secured"),
        cache=REPO / ".samt124" / "cache",
        local_kafka_port=free_port(),
        local_controller_port=free_port(),
        local_kafka_sasl_port=free_port(),
        local_kafka_ssl_port=free_port(),
        kafka_sasl_username=USER,
        kafka_sasl_password=SecretStr(PASSWORD),
    )
    kafka.up(settings, timeout=180)
    try:
        yield settings
    finally:
        kafka.down(settings)


def through_sasl(broker: Settings) -> Settings:
    return broker.model_copy(
        update={
            "topic_namespace": "sasl",
            "kafka_bootstrap": f"127.0.0.1:{broker.local_kafka_sasl_port}",
            "kafka_security_protocol": "SASL_PLAINTEXT",
            "kafka_sasl_mechanism": "PLAIN",
        }
    )


def through_scram(broker: Settings) -> Settings:
    """The same listener and user, logging in with SCRAM-SHA-512 instead of PLAIN."""
    return through_sasl(broker).model_copy(
        update={"topic_namespace": "scram", "kafka_sasl_mechanism": "SCRAM-SHA-512"}
    )


def through_tls(broker: Settings) -> Settings:
    files = tls.files(broker.home / "kafka" / "tls")
    return broker.model_copy(
        update={
            "topic_namespace": "tls",
            "kafka_bootstrap": f"127.0.0.1:{broker.local_kafka_ssl_port}",
            "kafka_security_protocol": "SSL",
            "kafka_sasl_username": None,
            "kafka_sasl_password": None,
            "kafka_ssl_cafile": files.ca,
            "kafka_ssl_certfile": files.client_cert,
            "kafka_ssl_keyfile": files.client_key,
        }
    )


@pytest.mark.integration
@pytest.mark.parametrize(
    "through", [through_sasl, through_scram, through_tls], ids=["sasl-plain", "sasl-scram", "tls"]
)
def test_publish_route_and_lag_through_a_secured_listener(
    broker: Settings, through: Callable[[Settings], Settings], tmp_path: Path
) -> None:
    secured = through(broker)
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
            f"the referral, through {secured.kafka_security_protocol}",
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
    output = worker.output()
    assert "SaslAuthenticationFailed" not in output
    assert "SSLError" not in output, output[-3000:]


def _samt124_lag(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "samt124.cli", "lag", "--json", *args],
        env=env_for(settings),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _lag(settings: Settings, group: str) -> dict[str, object] | None:
    result = _samt124_lag(settings, "--group", group)
    try:
        groups = json.loads(result.stdout)["groups"]
    except (json.JSONDecodeError, KeyError):
        return None
    found = [g for g in groups if g["group"] == group and g["partitions"]]
    return found[0] if found else None


def wrong_password(broker: Settings) -> Settings:
    return through_sasl(broker).model_copy(
        update={"kafka_sasl_password": SecretStr("not-the-password")}
    )


def no_certificate(broker: Settings) -> Settings:
    return through_tls(broker).model_copy(
        update={"kafka_ssl_certfile": None, "kafka_ssl_keyfile": None}
    )


@pytest.mark.integration
@pytest.mark.parametrize(
    ("client", "said"),
    [(wrong_password, "auth"), (no_certificate, "samt124_kafka_ssl_certfile")],
    ids=["sasl-wrong-password", "tls-no-client-certificate"],
)
def test_a_client_that_cannot_authenticate_is_refused_with_a_clear_error(
    broker: Settings, client: Callable[[Settings], Settings], said: str
) -> None:
    result = _samt124_lag(client(broker))
    assert result.returncode != 0
    assert "Traceback" not in result.stderr, result.stderr[-2000:]
    assert said in (result.stdout + result.stderr).lower(), result.stderr[-2000:]
