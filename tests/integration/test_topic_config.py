"""Topic configuration on the real broker: samt124's topics are created as its plan says, and
``samt124 init`` says how an existing cluster's topics differ and alters what can be altered."""

from __future__ import annotations

from typing import Any

import pytest

from samt124.cli import main
from samt124.kafka.admin import ensure_topics, inspect_topics, topic_names
from samt124.kafka.topics import Topics
from samt124.settings import Settings
from tests.integration.pipeline import wait_for

WEEK_MS = 7 * 24 * 3600 * 1000


def _configs(settings: Settings, names: list[str]) -> dict[str, dict[str, str]]:
    """The broker's own view of the topics' configs (read independently of samt124's check)."""
    from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=settings.bootstrap)
    try:
        resources = [ConfigResource(ConfigResourceType.TOPIC, name) for name in names]
        found = admin.describe_configs(resources, config_filter="all")["topic"]
    finally:
        admin.close()
    return {name: {key: entry["value"] for key, entry in found[name].items()} for name in names}


def test_each_topic_is_created_with_its_retention_and_compaction(settings: Settings) -> None:
    settings = settings.model_copy(update={"province_retention_ms": 3 * WEEK_MS})
    created = ensure_topics(settings)
    assert sorted(created) == sorted(topic_names(settings))
    topics = Topics(settings.topic_namespace)
    configs = _configs(
        settings,
        [topics.intake, topics.dlq, topics.sla, topics.province("IR-30"), *topics.changelogs()],
    )
    assert configs[topics.intake]["retention.ms"] == "-1"
    assert configs[topics.dlq]["retention.ms"] == "-1"
    assert configs[topics.province("IR-30")]["retention.ms"] == str(3 * WEEK_MS)
    assert configs[topics.sla]["retention.ms"] == str(settings.sla_retention_ms)
    for changelog in topics.changelogs():
        assert configs[changelog]["cleanup.policy"] == "compact"
    # one broker: one replica, and min.insync.replicas 1
    assert {configs[name]["min.insync.replicas"] for name in configs} == {"1"}
    assert inspect_topics(settings)[1] == []


def _stock_intake(settings: Settings) -> None:
    """An intake topic as a stock cluster makes it: the broker's week of retention."""
    from kafka.admin import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=settings.bootstrap)
    try:
        admin.create_topics(
            {
                Topics(settings.topic_namespace).intake: {
                    "num_partitions": settings.partitions,
                    "replication_factor": 1,
                    "configs": {"retention.ms": str(WEEK_MS), "cleanup.policy": "delete"},
                }
            }
        )
    finally:
        admin.close()


def _init(settings: Settings, server_url: str, *flags: str) -> int:
    return main(
        [
            "--bootstrap",
            settings.bootstrap,
            "--namespace",
            settings.topic_namespace,
            "--clickhouse-url",
            server_url,
            "--home",
            str(settings.home),
            "init",
            *flags,
        ]
    )


def test_init_says_what_differs_and_fix_alters_it(
    settings: Settings, server_url: str, capsys: pytest.CaptureFixture[Any]
) -> None:
    _stock_intake(settings)
    intake = Topics(settings.topic_namespace).intake
    assert _init(settings, server_url) == 0
    said = capsys.readouterr().out
    assert f"differs: {intake}: retention.ms is {WEEK_MS}, samt124 wants -1" in said
    assert "samt124 init --fix" in said
    assert _configs(settings, [intake])[intake]["retention.ms"] == str(WEEK_MS)  # only said

    assert _init(settings, server_url, "--fix") == 0
    said = capsys.readouterr().out
    assert f"fixed: {intake}: retention.ms is {WEEK_MS}, samt124 wants -1" in said
    wait_for(  # an altered config reaches every reader within moments, not always at once
        lambda: _configs(settings, [intake])[intake]["retention.ms"] == "-1",
        30,
        "the altered retention",
    )
    assert _init(settings, server_url) == 0
    assert "kafka topics: as samt124 wants them" in capsys.readouterr().out


def test_a_partition_count_that_differs_is_said_and_fails_fix(
    settings: Settings, server_url: str, capsys: pytest.CaptureFixture[Any]
) -> None:
    _stock_intake(settings.model_copy(update={"partitions": 2}))
    assert _init(settings, server_url, "--fix") == 1
    captured = capsys.readouterr()
    intake = Topics(settings.topic_namespace).intake
    assert f"differs: {intake}: partitions is 2, samt124 wants 4" in captured.out
    assert "SAMT124_PARTITIONS" in captured.out
    assert "could not be altered in place" in captured.err
