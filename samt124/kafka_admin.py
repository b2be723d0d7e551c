"""Creating samt124's topics (idempotent): intake, the 31 provincial topics, SLA, dead letters."""

from __future__ import annotations

import contextlib

from samt124.provinces import PROVINCES
from samt124.settings import Settings
from samt124.topics import Topics


def topic_names(settings: Settings) -> list[str]:
    topics = Topics(settings.topic_namespace)
    return [
        topics.intake,
        topics.sla,
        topics.dlq,
        *(topics.province(code) for code in sorted(PROVINCES)),
    ]


def ensure_topics(settings: Settings) -> list[str]:
    """Create whichever of samt124's topics are missing; return the names created."""
    from kafka.admin import KafkaAdminClient, NewTopic
    from kafka.errors import TopicAlreadyExistsError

    admin = KafkaAdminClient(**settings.kafka_client_options(), client_id="samt124-admin")
    try:
        existing = set(admin.list_topics())
        wanted = [name for name in topic_names(settings) if name not in existing]
        if wanted:
            # created meanwhile by another process: what we wanted
            with contextlib.suppress(TopicAlreadyExistsError):
                admin.create_topics(
                    [
                        NewTopic(name, settings.partitions, settings.replication_factor)
                        for name in wanted
                    ]
                )
        return wanted
    finally:
        admin.close()
