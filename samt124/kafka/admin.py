"""Creating samt124's topics (idempotent): intake, the 31 provincial topics, SLA, dead letters."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

from samt124.kafka.topics import Topics
from samt124.settings import Settings


def topic_names(settings: Settings) -> list[str]:
    topics = Topics(settings.topic_namespace)
    return [
        topics.intake,
        topics.sla,
        topics.dlq,
        *topics.provinces(),
    ]


def ensure_topics(
    settings: Settings, extra: Sequence[str] = (), timeout: float = 60.0
) -> list[str]:
    """Create whichever of samt124's topics (and ``extra`` ones) are missing; return those.

    Returns once the broker's metadata shows every partition of the created topics: a consumer
    started right after (Faust ignores topics it cannot find at start) then finds them.
    """
    from kafka.admin import KafkaAdminClient, NewTopic
    from kafka.errors import TopicAlreadyExistsError

    admin = KafkaAdminClient(**settings.kafka_client_options(), client_id="samt124-admin")
    try:
        existing = set(admin.list_topics())
        wanted = [name for name in (*topic_names(settings), *extra) if name not in existing]
        if wanted:
            # created meanwhile by another process: what we wanted
            with contextlib.suppress(TopicAlreadyExistsError):
                admin.create_topics(
                    [
                        NewTopic(name, settings.partitions, settings.replication_factor)
                        for name in wanted
                    ]
                )
        if wanted:
            _wait_for_metadata(settings, wanted, timeout)
        return wanted
    finally:
        admin.close()


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

            def known(name: str = topic) -> bool:
                consumer.topics()  # refresh the metadata
                return len(consumer.partitions_for_topic(name) or ()) >= settings.partitions

            wait_until(known, timeout, f"the partitions of {topic} in the broker's metadata")
    finally:
        consumer.close()
