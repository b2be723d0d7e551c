"""How samt124 keeps each topic: retention, compaction, replicas, and what a check reports."""

from __future__ import annotations

import uuid

from samt124.kafka.topics import (
    Found,
    TopicPlan,
    Topics,
    differences,
    partition_of,
    replication_for,
    role_of,
)
from streams.app import changelog_topic

DAY_MS = 24 * 3600 * 1000


def plan(replicas: int = 3) -> TopicPlan:
    return TopicPlan(4, replicas, 30 * DAY_MS, 60 * DAY_MS)


def test_replicas_are_three_at_most_and_what_the_operator_sets() -> None:
    assert [replication_for(brokers, None) for brokers in (1, 2, 3, 5)] == [1, 2, 3, 3]
    assert replication_for(5, 5) == 5
    assert replication_for(1, 2) == 2  # said, and refused by the broker: not hidden


def test_min_insync_replicas_is_two_from_three_replicas() -> None:
    assert [plan(r).min_insync_replicas for r in (1, 2, 3, 4)] == [1, 1, 2, 2]


def test_every_role_has_its_retention() -> None:
    wanted = plan()
    assert wanted.configs("intake")["retention.ms"] == "-1"
    assert wanted.configs("dlq")["retention.ms"] == "-1"
    assert wanted.configs("province")["retention.ms"] == str(30 * DAY_MS)
    assert wanted.configs("sla")["retention.ms"] == str(60 * DAY_MS)
    assert wanted.configs("changelog") == {"cleanup.policy": "compact", "min.insync.replicas": "2"}
    for role in ("intake", "dlq", "province", "sla"):
        assert wanted.configs(role)["cleanup.policy"] == "delete"
        assert wanted.configs(role)["min.insync.replicas"] == "2"


def test_the_changelog_names_are_faust_s() -> None:
    topics = Topics("ns")
    assert topics.changelog("requests") == "ns-worker-requests-changelog"
    assert role_of(topics, "ns-worker-closures-changelog") == "changelog"
    assert role_of(topics, "ns.province.IR-30") == "province"
    assert role_of(topics, "other.intake") is None


def test_the_worker_s_changelog_is_one_of_them() -> None:
    from samt124.settings import load

    settings = load(topic_namespace="ns")
    assert changelog_topic(settings) in Topics("ns").changelogs()


def test_a_topic_as_wanted_has_no_difference() -> None:
    wanted = plan()
    topics = Topics("ns")
    found = Found(topics.intake, 4, 3, wanted.configs("intake"))
    assert differences(wanted, topics, found) == []


def test_a_stock_topic_differs_in_retention_replicas_and_isr() -> None:
    wanted = plan()
    topics = Topics("ns")
    stock = {"cleanup.policy": "delete", "retention.ms": "604800000", "retention.bytes": "-1"}
    stock["min.insync.replicas"] = "1"
    found = differences(wanted, topics, Found(topics.intake, 2, 1, stock))
    described = {(d.setting, d.found, d.wanted, d.alterable) for d in found}
    assert described == {
        ("partitions", "2", "4", False),
        ("replication factor", "1", "3", False),
        ("retention.ms", "604800000", "-1", True),
        ("min.insync.replicas", "1", "2", True),
    }


def test_more_in_sync_replicas_than_planned_is_the_operator_s_choice() -> None:
    wanted = plan()
    topics = Topics("ns")
    configs = {**wanted.configs("changelog"), "min.insync.replicas": "3"}
    assert differences(wanted, topics, Found(topics.changelog("requests"), 4, 5, configs)) == []
    # but never more than there are replicas: no write could be acknowledged
    short = differences(
        wanted,
        topics,
        Found(topics.changelog("requests"), 4, 3, {**configs, "min.insync.replicas": "4"}),
    )
    assert [d.setting for d in short] == ["min.insync.replicas"]


def test_a_topic_that_is_not_samt124_s_is_left_alone() -> None:
    assert differences(plan(), Topics("ns"), Found("elsewhere", 1, 1, {})) == []


def test_both_kafka_clients_put_a_request_on_the_partition_samt124_expects() -> None:
    """The HTTP API publishes with aiokafka, everything else with kafka-python: a request's
    events stay in order only if both pick the partition :func:`partition_of` names."""
    from aiokafka.partitioner import DefaultPartitioner as AioPartitioner
    from kafka.partitioner.default import murmur2 as kafka_murmur2

    for n in range(2_000):
        key = str(uuid.UUID(int=n * 0x9E3779B97F4A7C15 % (1 << 128), version=4)).encode()
        for partitions in (1, 3, 12):
            every = list(range(partitions))
            expected = partition_of(key, partitions)
            assert AioPartitioner()(key, every, every) == expected
            assert (kafka_murmur2(key) & 0x7FFFFFFF) % partitions == expected
