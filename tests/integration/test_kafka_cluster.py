"""A local three-node Kafka cluster (`samt124 local up --brokers 3`): it starts from the same
Maven jars, samt124's topics get three replicas and min.insync.replicas=2 there, and the real
worker routes traffic through it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from devtools.local import kafka_cluster
from producers.publisher import Publisher
from producers.simulator import simulate
from samt124.cli import main
from samt124.domain.events import Event, LetterRegistered, RequestReferred, RequestSubmitted
from samt124.kafka.admin import ensure_topics, inspect_topics, topic_names
from samt124.kafka.reader import read_topics
from samt124.kafka.topics import Topics
from samt124.settings import Settings
from tests.integration.conftest import Services, unique
from tests.integration.pipeline import decoded, start, wait_for

pytestmark = pytest.mark.integration
PORT = 21092  # nodes on 21092, 21094, 21096; their controllers on 21093, 21095, 21097
EVENTS = 3_000


@pytest.fixture(scope="module")
def cluster(services: Services, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """Three KRaft nodes in their own home and on their own ports, stopped afterwards."""
    local = Settings(
        home=tmp_path_factory.mktemp("cluster") / "home",
        cache=services.base.cache,
        local_kafka_port=PORT,
        local_controller_port=PORT + 1,
        local_kafka_brokers=3,
    )
    try:
        kafka_cluster.up(local)
        yield local
    finally:
        kafka_cluster.down(local)


def _for_test(cluster: Settings, tmp_path: Path) -> Settings:
    return cluster.model_copy(
        update={"home": tmp_path / "home", "topic_namespace": unique("c"), "partitions": 4}
    )


def test_local_status_shows_each_node_and_the_bootstrap_names_all(
    cluster: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[Any]
) -> None:
    monkeypatch.setenv("SAMT124_LOCAL_KAFKA_PORT", str(PORT))
    monkeypatch.setenv("SAMT124_LOCAL_CONTROLLER_PORT", str(PORT + 1))
    monkeypatch.delenv("SAMT124_KAFKA_BOOTSTRAP", raising=False)
    assert main(["--home", str(cluster.home), "local", "status"]) == 0
    said = capsys.readouterr().out
    for number, port in ((1, PORT), (2, PORT + 2), (3, PORT + 4)):
        assert f"kafka-{number}     running  pid " in said
        assert f"127.0.0.1:{port}" in said
    assert cluster.bootstrap == f"127.0.0.1:{PORT},127.0.0.1:{PORT + 2},127.0.0.1:{PORT + 4}"
    assert kafka_cluster.brokers_seen(f"127.0.0.1:{PORT + 4}") == 3


def test_topics_get_three_replicas_and_two_in_sync(cluster: Settings, tmp_path: Path) -> None:
    from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient

    settings = _for_test(cluster, tmp_path)
    ensure_topics(settings)
    names = topic_names(settings)
    admin = KafkaAdminClient(bootstrap_servers=settings.bootstrap)
    try:
        described = admin.describe_topics(names)
        resources = [
            ConfigResource(ConfigResourceType.TOPIC, name, {"min.insync.replicas": None})
            for name in names
        ]
        configs = admin.describe_configs(resources, config_filter="all")["topic"]
    finally:
        admin.close()
    assert len(described) == len(names) == 31 + 5
    for topic in described:
        assert len(topic["partitions"]) == 4
        for partition in topic["partitions"]:
            assert sorted(partition["replica_nodes"]) == [1, 2, 3], topic["name"]
    assert {configs[name]["min.insync.replicas"]["value"] for name in names} == {"2"}
    plan, differences = inspect_topics(settings)
    assert (plan.replication_factor, plan.min_insync_replicas, differences) == (3, 2, [])


def test_the_worker_routes_through_the_cluster(cluster: Settings, tmp_path: Path) -> None:
    settings = _for_test(cluster, tmp_path)
    events = list(simulate(11, EVENTS, datetime(2024, 10, 1, tzinfo=UTC)))
    opened = {e.request_id for e in events if isinstance(e, RequestSubmitted | LetterRegistered)}
    ensure_topics(settings)
    with Publisher(settings) as publisher:
        publisher.publish_many(events)
    provinces = Topics(settings.topic_namespace).provinces()
    worker = start(settings, "worker", log=tmp_path / "worker.log")
    wanted = {e.event_id for e in events}
    try:

        def all_routed() -> list[Event] | None:
            routed = decoded(read_topics(settings, provinces))
            return routed if wanted <= {e.event_id for e in routed} else None

        routed = wait_for(all_routed, 240, "every intake event on its province topic", every=3)
        assert worker.popen.poll() is None, worker.output()[-3000:]
    finally:
        worker.stop()
    referred = [e.request_id for e in routed if isinstance(e, RequestReferred)]
    assert set(referred) == opened
    routed_ids = [e.event_id for e in routed if e.event_id in wanted]
    assert len(routed_ids) == len(wanted)  # each once
