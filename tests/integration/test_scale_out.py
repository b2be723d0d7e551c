"""A second worker joins while the first is routing: the group rebalances and nothing is lost.

A rebalance is where the consumer under Faust has been seen to skip prefetched messages; the
worker's guard (:mod:`streams.sequence`) then restarts it from the committed offset, and as a
static member of the group it gets its partitions back without a rebalance. Whichever of those
happens in a given run, every intake event must reach its province topic, and every request
opened must get its referral.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from producers.publisher import Publisher
from producers.simulator import simulate
from samt124.domain.events import Event, LetterRegistered, RequestReferred, RequestSubmitted
from samt124.kafka.admin import ensure_topics
from samt124.kafka.reader import count_records, read_topics
from samt124.kafka.topics import Topics
from samt124.settings import Settings
from tests.integration.pipeline import decoded, start, wait_for

pytestmark = pytest.mark.integration
EVENTS = 20_000


def test_a_worker_joining_mid_stream_loses_nothing(settings: Settings, tmp_path: Path) -> None:
    ensure_topics(settings)
    events = list(simulate(7, EVENTS, datetime(2024, 10, 1, tzinfo=UTC)))
    opened = {e.request_id for e in events if isinstance(e, RequestSubmitted | LetterRegistered)}
    with Publisher(settings) as publisher:
        for first in range(0, len(events), 5_000):
            publisher.publish_many(events[first : first + 5_000])
    topics = Topics(settings.topic_namespace)
    provinces = topics.provinces()

    one = start(
        settings.model_copy(update={"home": tmp_path / "a"}), "worker", log=tmp_path / "a.log"
    )
    two = None
    try:
        wait_for(lambda: count_records(settings, provinces) >= 3_000, 120, "the first routing")
        two = start(
            settings.model_copy(update={"home": tmp_path / "b"}), "worker", log=tmp_path / "b.log"
        )
        wait_for(
            lambda: count_records(settings, provinces) >= EVENTS + len(opened),
            300,
            "every event and referral on the province topics",
        )
        wanted = {e.event_id for e in events}

        def all_routed() -> list[Event] | None:
            routed = decoded(read_topics(settings, provinces))
            return routed if wanted <= {e.event_id for e in routed} else None

        routed = wait_for(all_routed, 120, "every intake event on its province topic", every=3)
        assert one.popen.poll() is None, one.output()[-3000:]
        assert two.popen.poll() is None, two.output()[-3000:]
    finally:
        one.stop()
        if two is not None:
            two.stop()

    referred = {e.request_id for e in routed if isinstance(e, RequestReferred)}
    assert referred == opened


def members(settings: Settings, group: str) -> list[str]:
    """The static ids of the group's members, as the broker's coordinator sees them (none while
    the broker is still electing a coordinator for the group)."""
    from kafka.admin import KafkaAdminClient
    from kafka.errors import CoordinatorNotAvailableError

    admin = KafkaAdminClient(**settings.kafka_client_options())
    try:
        described = admin.describe_groups([group])[group]
    except CoordinatorNotAvailableError:
        return []
    finally:
        admin.close()
    return sorted(str(m.get("group_instance_id")) for m in described.get("members") or [])


def test_a_worker_stopped_with_leave_on_stop_hands_its_partitions_over_at_once(
    settings: Settings, tmp_path: Path
) -> None:
    from streams.app import group_id, instance_id

    ensure_topics(settings)
    group = group_id(settings)
    staying = settings.model_copy(update={"home": tmp_path / "a", "worker_id": "stays"})
    leaving = settings.model_copy(update={"home": tmp_path / "b", "worker_id": "leaves"})
    assert (instance_id(staying), instance_id(leaving)) == ("stays", "leaves")

    one = start(staying, "worker", log=tmp_path / "a.log")
    two = start(leaving, "worker", "--leave-on-stop", log=tmp_path / "b.log")
    try:
        wait_for(
            lambda: members(settings, group) == ["leaves", "stays"], 120, "both workers joined"
        )
        assert two.stop() == 0, two.output()
        # at once, not after the 30 s session timeout
        assert members(settings, group) == ["stays"], two.output()
        assert "left " + group + " as leaves" in two.output()

        assert one.stop() == 0, one.output()
        # a static member stopped without the flag keeps its place for a restart
        assert members(settings, group) == ["stays"]
    finally:
        one.stop()
        two.stop()
