"""``samt124 worker --rebuild``: the worker's state forgotten and made again from the intake."""

from __future__ import annotations

import json
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from samt124.contract import wire
from samt124.domain.events import Event, RequestAssigned, RequestResponded, RequestSubmitted
from samt124.domain.lifecycle import RequestState
from samt124.errors import CommandFailed
from samt124.kafka.admin import ensure_topics
from samt124.kafka.reader import read_topics
from samt124.kafka.topics import Topics
from samt124.settings import Settings
from streams.app import group_id, store_dir
from streams.rebuild import STORE_ID, rebuild
from streams.verify import verify
from tests.integration.pipeline import produce_raw, start, submission, wait_for

PROVINCES = ("IR-23", "IR-30", "IR-10", "IR-07")


def traffic(now: datetime) -> list[Event]:
    """Recent submissions in four provinces (Alborz's delegated ones included), some assigned
    and answered by their province's SAMT organization: nothing falls due within the test."""
    events: list[Event] = []
    for n in range(40):
        at = now - timedelta(minutes=30) + timedelta(seconds=n)
        category = "IND-PERMIT" if n % 3 else "MKT-OVERCHARGE"  # Khaneh Samt's in Alborz
        request = submission(province=PROVINCES[n % 4], category=category, at=at)
        events.append(request)
        body = f"samt-org:{request.province}"
        if n % 3 != 2:  # by the SAMT organization: refused (dead-lettered) for Khaneh Samt's
            events.append(
                RequestAssigned(
                    event_id=str(uuid.uuid4()),
                    request_id=request.request_id,
                    occurred_at=at + timedelta(minutes=5),
                    recorded_at=at + timedelta(minutes=5),
                    source="test",
                    actor=body,
                    body_id=body,
                    assignee="operator-7",
                )
            )
        if n % 5 == 0:
            events.append(
                RequestResponded(
                    event_id=str(uuid.uuid4()),
                    request_id=request.request_id,
                    occurred_at=at + timedelta(minutes=9),
                    recorded_at=at + timedelta(minutes=9),
                    source="test",
                    actor=body,
                    body_id=body,
                    message="در حال بررسی",
                )
            )
    return events


def states(settings: Settings) -> dict[str, RequestState]:
    """The latest state of each request on the request changelog."""
    topic = Topics(settings.topic_namespace).changelog("requests")
    latest: dict[str, RequestState] = {}
    for record in read_topics(settings, [topic]):
        if record.key is not None and record.value:
            latest[json.loads(record.key)] = RequestState.from_bytes(record.value)
    return latest


def place(letter: Any) -> tuple[int, int]:
    """The intake partition and offset a dead letter came from."""
    return int(letter.headers["dlq-partition"]), int(letter.headers["dlq-offset"])


def acknowledged_all(settings: Settings, messages: int) -> bool:
    report = verify(settings, group=group_id(settings), since=None, until=None)
    return report.total("judged") == messages and report.missing == 0


def test_a_rebuild_reads_the_intake_again_to_the_same_states_and_other_hosts_discard_theirs(
    settings: Settings, tmp_path: Path
) -> None:
    ensure_topics(settings)
    topics = Topics(settings.topic_namespace)
    events = traffic(datetime.now(UTC))
    messages: list[tuple[bytes | None, bytes]] = [(wire.key(e), wire.encode(e)) for e in events]
    messages.append((b"req-garbage", b"not avro at all"))
    produce_raw(settings, topics.intake, messages)
    requests = {e.request_id for e in events if isinstance(e, RequestSubmitted)}

    # two workers, as on two hosts: each keeps the states of its partitions in its own store
    here = settings.model_copy(update={"home": tmp_path / "a", "worker_id": "host-a"})
    there = settings.model_copy(update={"home": tmp_path / "b", "worker_id": "host-b"})
    first = start(here, "worker", log=tmp_path / "a-1.log")
    other = start(there, "worker", "--leave-on-stop", log=tmp_path / "b-1.log")
    try:
        wait_for(lambda: acknowledged_all(here, len(messages)), 180, "both workers to route all")
        wait_for(lambda: states(here).keys() == requests, 60, "every request's state")
        # while workers run, a rebuild refuses and deletes nothing
        elsewhere = settings.model_copy(update={"home": tmp_path / "c", "worker_id": "host-c"})
        said: list[str] = []
        with pytest.raises(CommandFailed, match=r"workers still run in .*host-a, host-b"):
            rebuild(
                elsewhere,
                group=group_id(here),
                instance="host-c",
                datadir=store_dir(elsewhere),
                say=said.append,
                empty_wait=2.0,
            )
        assert "waiting up to 2 s" in said[0]
        assert states(here).keys() == requests
    finally:
        stopped = [first.stop(), other.stop()]
    assert stopped == [0, 0]
    before = states(here)
    routed = Counter(
        wire.decode(r.value).event_id for r in read_topics(here, list(topics.provinces()))
    )
    dead = Counter(place(r) for r in read_topics(here, [topics.dlq]))
    assert sorted(Counter(routed.values())) == [1]
    assert len(dead) > 1  # the garbage, and the assignments refused
    assert any(s.body_kind == "KHANEH_SAMT" for s in before.values())
    assert any(s.status == "RESPONDED" for s in before.values())
    assert (store_dir(there) / STORE_ID).exists()
    old_id = (store_dir(there) / STORE_ID).read_text()

    rebuilt = start(here, "worker", "--rebuild", log=tmp_path / "a-2.log")
    try:
        wait_for(lambda: "reading the intake from its beginning" in rebuilt.output(), 90, "reset")
        log = rebuilt.output()
        assert f"deleted the committed offsets of {group_id(here)}" in log
        assert topics.changelog("requests") in log
        wait_for(lambda: acknowledged_all(here, len(messages)), 180, "the rebuild to read all")
        wait_for(lambda: states(here).keys() == requests, 60, "every request's state again")
        after = states(here)
        # the host that was not rebuilt: its store came from the changelog that is gone
        again = start(there, "worker", log=tmp_path / "b-2.log")
        try:
            wait_for(lambda: "recovered " in again.output(), 120, "the other host's recovery")
            assert "discarded the local store" in again.output()
            assert (store_dir(there) / STORE_ID).read_text() != old_id
            assert states(here) == after  # it decided nothing anew: nothing new on the intake
        finally:
            stopped = [again.stop()]
    finally:
        stopped.append(rebuilt.stop())
    assert stopped == [0, 0]
    # every request decided again from the intake alone, to the same state
    assert after == before
    # and everything routed or dead-lettered once more, under the same ids
    routed_again = Counter(
        wire.decode(r.value).event_id for r in read_topics(here, list(topics.provinces()))
    )
    assert routed_again.keys() == routed.keys()
    assert sorted(Counter(routed_again.values())) == [2]
    # each message dead-lettered before, once more (a first-run repeat after a rebalance aside)
    letters_again = Counter(place(r) for r in read_topics(here, [topics.dlq])) - dead
    assert letters_again == Counter(dead.keys())
