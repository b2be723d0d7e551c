"""Integration fixtures: the real Kafka broker and ClickHouse server, started once per session.

They start through the same code as ``samt124 local up`` on test ports, in ``.samt124/test``
(a running one is reused), unless ``SAMT124_TEST_KAFKA_BOOTSTRAP`` /
``SAMT124_TEST_CLICKHOUSE_URL`` point at external services. Each test gets its own topic
namespace and its own ClickHouse database, so tests never see each other's data.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from devtools.local import clickhouse, kafka
from samt124.kafka.admin import ensure_topics
from samt124.settings import Settings, parse_clickhouse_url
from tests.integration.pipeline import Process, start

REPO = Path(__file__).resolve().parents[2]
TEST_PORTS = {
    "local_kafka_port": 19092,
    "local_controller_port": 19093,
    "local_clickhouse_port": 19000,
    "local_clickhouse_http_port": 18123,
}


@dataclass(frozen=True)
class Services:
    base: Settings  # where the broker and the server are
    clickhouse_server: str  # clickhouse://... of the server, database part ignored


@pytest.fixture(scope="session")
def services() -> Iterator[Services]:
    external_kafka = os.environ.get("SAMT124_TEST_KAFKA_BOOTSTRAP")
    external_clickhouse = os.environ.get("SAMT124_TEST_CLICKHOUSE_URL")
    base = Settings(
        home=REPO / ".samt124" / "test",
        cache=REPO / ".samt124" / "cache",
        kafka_bootstrap=external_kafka,
        **TEST_PORTS,  # type: ignore[arg-type]
    )
    started: list[str] = []
    if external_kafka is None:
        if not kafka.status(base).running:
            started.append("kafka")
        kafka.up(base)
    if external_clickhouse is None:
        if not clickhouse.status(base).running:
            started.append("clickhouse")
        server_url = clickhouse.up(base).url
    else:
        server_url = external_clickhouse
    yield Services(base=base, clickhouse_server=server_url)
    if os.environ.get("SAMT124_TEST_KEEP_SERVICES"):
        return
    if "clickhouse" in started:
        clickhouse.down(base)
    if "kafka" in started:
        kafka.down(base)


@pytest.fixture(autouse=True)
def _drop_new_topics(request: pytest.FixtureRequest) -> Iterator[None]:
    """Delete the topics of the namespaces a test on the shared broker made (:func:`unique`),
    once everything it started stopped.

    A whole run creates thousands of partitions (each test has its own namespace); kept, they
    would hold the broker's open files past the process limit.
    """
    if "services" not in request.fixturenames:
        yield
        return
    bootstrap = request.getfixturevalue("services").base.bootstrap
    _NAMES.clear()
    yield
    mine = tuple(f"{name}{sep}" for name in _NAMES for sep in ".-")
    if not mine:
        return
    created = {t for t in (_topics(bootstrap) or set()) if t.startswith(mine)}
    if created:
        _delete(bootstrap, sorted(created))


def _topics(bootstrap: str) -> set[str] | None:
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError

    try:
        admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    except (KafkaError, OSError):
        return None  # the broker is away (a test stopped it): nothing to compare
    try:
        return set(admin.list_topics())
    finally:
        admin.close()


def _delete(bootstrap: str, topics: list[str]) -> None:
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError

    try:
        admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=30_000)
    except (KafkaError, OSError):
        return
    try:
        for start in range(0, len(topics), 100):
            admin.delete_topics(topics[start : start + 100], timeout_ms=30_000)
    except KafkaError:
        pass  # left for the broker's next run; the next test deletes its own
    finally:
        admin.close()


_NAMES: list[str] = []  # what unique() gave the running test: its topic namespaces among them


def unique(prefix: str) -> str:
    name = f"{prefix}{uuid.uuid4().hex[:10]}"
    _NAMES.append(name)
    return name


@pytest.fixture
def server_url(services: Services) -> Iterator[str]:
    """A fresh database on the real ClickHouse server, dropped afterwards."""
    from clickhouse_driver import Client

    target = parse_clickhouse_url(services.clickhouse_server)
    database = unique("test_")
    client = Client(
        target.host,
        port=target.port,
        user=target.user,
        password=target.password.get_secret_value(),
    )
    client.execute(f"CREATE DATABASE {database}")
    password = target.password.get_secret_value()
    yield f"clickhouse://{target.user}:{password}@{target.host}:{target.port}/{database}"
    client.execute(f"DROP DATABASE IF EXISTS {database}")
    client.disconnect()


@pytest.fixture
def chdb_url(tmp_path: Path) -> str:
    """A fresh embedded ClickHouse directory."""
    return f"chdb://{tmp_path / 'chdb'}"


@pytest.fixture
def settings(services: Services, tmp_path: Path) -> Settings:
    """Settings for one test: its own topic namespace, home and embedded analytics."""
    return Settings(
        home=tmp_path / "home",
        cache=services.base.cache,
        kafka_bootstrap=services.base.bootstrap,
        topic_namespace=unique("t"),
        partitions=4,
    )


@pytest.fixture
def worker(settings: Settings, tmp_path: Path) -> Iterator[Process]:
    """``samt124 worker`` on this test's topics (created first), stopped after the test."""
    ensure_topics(settings)
    process = start(settings, "worker", log=tmp_path / "worker.log")
    yield process
    process.stop()
