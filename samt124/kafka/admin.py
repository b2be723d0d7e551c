"""Creating samt124's topics (idempotent) as :class:`~samt124.kafka.topics.TopicPlan` describes
them: intake, the 31 provincial topics, SLA, dead letters and the worker's changelogs; and
checking the topics of an existing cluster against that plan."""

from __future__ import annotations

import contextlib
import functools
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, ParamSpec, TypeVar

from samt124.kafka.topics import (
    Difference,
    Found,
    Role,
    TopicPlan,
    Topics,
    differences,
    replication_for,
    role_of,
)
from samt124.settings import Settings

P = ParamSpec("P")
R = TypeVar("R")
log = logging.getLogger(__name__)
ATTEMPTS = 6  # about 30 s in all: a broker's restart, not an outage, is ridden out


def _riding_out_restarts(call: Callable[P, R]) -> Callable[P, R]:
    """Try ``call`` again when the broker it was talking to went away (a broker restarting or
    killed in a cluster): the next attempt bootstraps from the others. Other errors, and the
    last attempt's, are raised."""

    @functools.wraps(call)
    def again(*args: P.args, **kwargs: P.kwargs) -> R:
        from kafka.errors import KafkaConnectionError, NodeNotReadyError, RequestTimedOutError

        # not KafkaTimeoutError: no bootstrap server answering at all is said at once
        transient = (KafkaConnectionError, NodeNotReadyError, RequestTimedOutError)
        for attempt in range(1, ATTEMPTS + 1):
            try:
                return call(*args, **kwargs)
            except transient as error:
                if attempt == ATTEMPTS:
                    raise
                log.warning("%s: %s; again (%d of %d)", call.__name__, error, attempt, ATTEMPTS)
                time.sleep(min(8.0, 0.5 * 2**attempt))
        raise AssertionError("unreachable")

    return again


def topic_names(settings: Settings) -> list[str]:
    topics = Topics(settings.topic_namespace)
    return [
        topics.intake,
        topics.sla,
        topics.dlq,
        *topics.provinces(),
        *topics.changelogs(),
    ]


def plan_for(settings: Settings, brokers: int) -> TopicPlan:
    """The plan for a cluster of ``brokers`` brokers under ``settings``."""
    return TopicPlan(
        partitions=settings.partitions,
        replication_factor=replication_for(brokers, settings.replication_factor),
        province_retention_ms=settings.province_retention_ms,
        sla_retention_ms=settings.sla_retention_ms,
    )


@contextlib.contextmanager
def admin_client(settings: Settings) -> Iterator[Any]:
    """A kafka-python admin client on these settings, closed on leaving the block."""
    from kafka.admin import KafkaAdminClient

    admin = KafkaAdminClient(**settings.kafka_client_options(), client_id="samt124-admin")
    try:
        yield admin
    finally:
        admin.close()


def _brokers(admin: Any) -> int:
    return len(admin.describe_cluster()["brokers"])


@_riding_out_restarts
def cluster_plan(settings: Settings) -> TopicPlan:
    """The plan for the cluster ``settings`` point at (its brokers counted now)."""
    with admin_client(settings) as admin:
        return plan_for(settings, _brokers(admin))


def resolved(settings: Settings) -> Settings:
    """``settings`` with the replication factor the cluster gets (min(3, brokers) unless set),
    for a process that creates topics of its own (Faust)."""
    if settings.replication_factor is not None:
        return settings
    plan = cluster_plan(settings)
    return settings.model_copy(update={"replication_factor": plan.replication_factor})


@_riding_out_restarts
def ensure_topics(
    settings: Settings, extra: Sequence[str] = (), timeout: float = 60.0
) -> list[str]:
    """Create whichever of samt124's topics (and ``extra`` ones) are missing; return those.

    Each gets the plan's partitions, replication factor and topic configs (retention,
    compaction, ``min.insync.replicas``); an ``extra`` topic gets the partitions, replicas and
    ``min.insync.replicas``. Returns once the broker's metadata shows every partition of the
    created topics: a consumer started right after (Faust ignores topics it cannot find at
    start) then finds them.
    """
    from kafka.errors import TopicAlreadyExistsError

    topics = Topics(settings.topic_namespace)
    with admin_client(settings) as admin:
        plan = plan_for(settings, _brokers(admin))
        existing = set(admin.list_topics())
        wanted = [name for name in (*topic_names(settings), *extra) if name not in existing]
        if wanted:
            new = {name: _new_topic(plan, role_of(topics, name)) for name in wanted}
            # created meanwhile by another process: what we wanted
            with contextlib.suppress(TopicAlreadyExistsError):
                admin.create_topics(new)
    if wanted:
        _wait_for_metadata(settings, wanted, timeout)
    return wanted


def _new_topic(plan: TopicPlan, role: Role | None) -> dict[str, Any]:
    configs = (
        plan.configs(role)
        if role is not None
        else {"min.insync.replicas": str(plan.min_insync_replicas)}
    )
    return {
        "num_partitions": plan.partitions,
        "replication_factor": plan.replication_factor,
        "configs": configs,
    }


@_riding_out_restarts
def inspect_topics(settings: Settings) -> tuple[TopicPlan, list[Difference]]:
    """The plan for this cluster, and how samt124's existing topics differ from it."""
    from kafka.admin import ConfigResource, ConfigResourceType

    topics = Topics(settings.topic_namespace)
    with admin_client(settings) as admin:
        plan = plan_for(settings, _brokers(admin))
        existing = set(admin.list_topics())
        names = [name for name in topic_names(settings) if name in existing]
        if not names:
            return plan, []
        described = {topic["name"]: topic for topic in admin.describe_topics(names)}
        keys = {key for role in _roles(topics, names) for key in plan.configs(role)}
        resources = [
            ConfigResource(ConfigResourceType.TOPIC, name, dict.fromkeys(keys)) for name in names
        ]
        configs = admin.describe_configs(resources, config_filter="all")["topic"]
    found: list[Difference] = []
    for name in names:
        partitions = described[name]["partitions"]
        replicas = min((len(p["replica_nodes"]) for p in partitions), default=0)
        values = {key: entry["value"] for key, entry in configs.get(name, {}).items()}
        found += differences(plan, topics, Found(name, len(partitions), replicas, values))
    return plan, found


def _roles(topics: Topics, names: Sequence[str]) -> set[Role]:
    return {role for name in names if (role := role_of(topics, name)) is not None}


@_riding_out_restarts
def alter_topics(settings: Settings, found: Sequence[Difference]) -> list[Difference]:
    """Set the topic configs of ``found`` that can be altered in place (incrementally: the
    topics' other settings stay); return the differences that are left."""
    from kafka.admin import ConfigResource, ConfigResourceType

    by_topic: dict[str, dict[str, str]] = {}
    for difference in found:
        if difference.alterable:
            by_topic.setdefault(difference.topic, {})[difference.setting] = difference.wanted
    left = [difference for difference in found if not difference.alterable]
    if not by_topic:
        return left
    with admin_client(settings) as admin:
        resources = [
            ConfigResource(ConfigResourceType.TOPIC, topic, configs)
            for topic, configs in by_topic.items()
        ]
        results = admin.alter_configs(resources, incremental=True).get("topic", {})
    refused = {topic for topic, result in results.items() if result != "OK"}
    return left + [d for d in found if d.alterable and d.topic in refused]


@_riding_out_restarts
def partition_counts(settings: Settings, topics: Sequence[str]) -> dict[str, int]:
    """How many partitions each of ``topics`` has on the cluster (topics it lacks are left out)."""
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(**settings.kafka_client_options(), enable_auto_commit=False)
    try:
        found = {topic: consumer.partitions_for_topic(topic) for topic in topics}
    finally:
        consumer.close()
    return {topic: len(partitions) for topic, partitions in found.items() if partitions}


def _wait_for_metadata(settings: Settings, topics: Sequence[str], timeout: float) -> None:
    from kafka import KafkaConsumer

    from samt124.waiting import wait_until

    consumer = KafkaConsumer(**settings.kafka_client_options(), enable_auto_commit=False)
    try:
        for topic in topics:
            # A topic's metadata arrives whole. Any partitions will do: a topic another process
            # made meanwhile (with its own count) is there too, and init says how it differs.
            def known(name: str = topic) -> bool:
                consumer.topics()  # refresh the metadata
                return bool(consumer.partitions_for_topic(name))

            wait_until(known, timeout, f"the partitions of {topic} in the broker's metadata")
    finally:
        consumer.close()
