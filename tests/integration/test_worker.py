"""The worker on the real broker: referral, dead letters, de-duplication, breach after SIGKILL,
the transfer rule, and history replayed in chunks."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from samt124.contract import wire
from samt124.domain.calendar import always_open
from samt124.domain.events import (
    RequestAssigned,
    RequestReferred,
    RequestResponded,
    RequestSubmitted,
    RequestTransferred,
    SlaBreached,
    SlaDeadlinesSet,
    SlaWarning,
)
from samt124.domain.sla import single_policy
from samt124.kafka.admin import ensure_topics
from samt124.kafka.reader import Record, read_topics
from samt124.kafka.topics import Topics, partition_of
from samt124.settings import Settings
from tests.integration.pipeline import (
    Process,
    decoded,
    produce_raw,
    start,
    submission,
    wait_for,
)

ALWAYS_OPEN = always_open("test-always-open")
SHORT_POLICY_SECONDS = 12
SHORT_POLICY = single_policy(
    "test-short",
    first_response_hours=SHORT_POLICY_SECONDS / 3600,
    resolution_hours=1000,
    warning_percents=[50],
)


def send(settings: Settings, *events: object) -> None:
    topics = Topics(settings.topic_namespace)
    produce_raw(settings, topics.intake, [(wire.key(e), wire.encode(e)) for e in events])  # type: ignore[arg-type]


def assignment(request: RequestSubmitted, event_id: str | None = None) -> RequestAssigned:
    """The request assigned to an operator of its province's SAMT organization, now."""
    return RequestAssigned(
        event_id=event_id or str(uuid.uuid4()),
        request_id=request.request_id,
        occurred_at=datetime.now(UTC),
        recorded_at=datetime.now(UTC),
        source="test",
        actor=f"samt-org:{request.province}",
        body_id=f"samt-org:{request.province}",
        assignee="operator-7",
    )


def on_topic(settings: Settings, topic: str) -> list[object]:
    return decoded(read_topics(settings, [topic]))  # type: ignore[return-value]


def test_alborz_delegated_request_is_referred_to_khaneh_samt_within_a_second(
    settings: Settings, worker: Process, tmp_path: Path
) -> None:
    topics = Topics(settings.topic_namespace)
    warm = submission(province="IR-23")
    send(settings, warm)
    wait_for(lambda: on_topic(settings, topics.province("IR-23")), 90, "the worker to start")

    request = submission(province="IR-30", category="IND-PERMIT")
    send(settings, request)
    records = wait_for(
        lambda: [
            r
            for r in read_topics(settings, [topics.province("IR-30")])
            if isinstance(wire.decode(r.value), RequestReferred)
        ],
        30,
        "the referral on the Alborz topic",
    )
    referral = wire.decode(records[0].value)
    assert isinstance(referral, RequestReferred)
    assert referral.request_id == request.request_id
    assert referral.body_kind == "KHANEH_SAMT"
    assert referral.body_id == "khaneh-samt:IR-30"
    assert referral.rule_id == "IR-30/mou-khaneh-samt"
    assert referral.rules_version == "1404.1"
    assert records[0].headers["event-type"] == b"RequestReferred"
    intake = read_topics(settings, [topics.intake])
    published = next(r for r in intake if r.key == request.request_id.encode())
    latency_ms = records[0].timestamp_ms - published.timestamp_ms
    assert latency_ms < 1000, f"referral took {latency_ms} ms"
    alborz = [type(e).__name__ for e in on_topic(settings, topics.province("IR-30"))]
    assert alborz == ["RequestReferred", "RequestSubmitted", "SlaDeadlinesSet"]
    log = (tmp_path / "worker.log").read_text()
    assert "\x1b[" not in log, "terminal control codes in the worker's log file"


def test_garbage_goes_to_the_dead_letter_topic_and_routing_goes_on(
    settings: Settings, worker: Process
) -> None:
    topics = Topics(settings.topic_namespace)
    garbage = b"\x00\xffnot avro at all"
    invalid = replace(submission(), province="IR-99")
    produce_raw(
        settings,
        topics.intake,
        [(b"junk", garbage), (b"", b""), (wire.key(invalid), wire.encode(invalid))],
    )
    after = submission(province="IR-07")
    send(settings, after)

    def three_dead_letters() -> list[Record] | None:
        records = read_topics(settings, [topics.dlq])
        return records if len(records) >= 3 else None

    dead = wait_for(three_dead_letters, 90, "three dead letters")
    by_value = {r.value: r for r in dead}
    assert set(by_value) == {garbage, b"", wire.encode(invalid)}
    assert b"bad marker" in by_value[garbage].headers["dlq-reason"]
    assert by_value[garbage].key == b"junk"
    assert by_value[garbage].headers["dlq-topic"] == topics.intake.encode()
    assert b"province" in by_value[wire.encode(invalid)].headers["dlq-reason"]
    routed = wait_for(
        lambda: [
            e
            for e in on_topic(settings, topics.province("IR-07"))
            if getattr(e, "request_id", None) == after.request_id
        ],
        30,
        "the valid request after the garbage",
    )
    # the referral, the submission and its clocks' deadlines
    assert sorted(type(e).__name__ for e in routed) == [
        "RequestReferred",
        "RequestSubmitted",
        "SlaDeadlinesSet",
    ]
    assert worker.popen.poll() is None


def test_an_event_published_twice_is_routed_once(settings: Settings, worker: Process) -> None:
    topics = Topics(settings.topic_namespace)
    request = submission(province="IR-10")
    assigned = assignment(request, event_id="6f0c7a58-5d7c-4f0e-9d7e-0c8a5b1f2e33")
    send(settings, request, request, assigned, assigned)
    closing = submission(province="IR-10")
    send(settings, closing)
    wait_for(
        lambda: any(
            getattr(e, "request_id", None) == closing.request_id
            for e in on_topic(settings, topics.province("IR-10"))
        ),
        90,
        "routing to catch up",
    )
    ours = [
        type(e).__name__
        for e in on_topic(settings, topics.province("IR-10"))
        if getattr(e, "request_id", None) == request.request_id
    ]
    # an assignment moves no clock: no new deadlines
    assert ours == ["RequestReferred", "RequestSubmitted", "SlaDeadlinesSet", "RequestAssigned"]


def always_open_with(settings: Settings, tmp_path: Path, policies: dict[str, Any]) -> Settings:
    """These settings with an always-open calendar and ``policies``, their topics created."""
    calendars = tmp_path / "calendars.json"
    calendars.write_text(json.dumps(ALWAYS_OPEN))
    path = tmp_path / "policies.json"
    path.write_text(json.dumps(policies))
    settings = settings.model_copy(update={"calendars": calendars, "sla_policies": path})
    ensure_topics(settings)
    return settings


def referred_after_warm_up(settings: Settings) -> RequestSubmitted:
    """A submission referred by a started worker (a first one shows that it has started)."""
    topics = Topics(settings.topic_namespace)
    warm = submission(province="IR-01")
    send(settings, warm)
    wait_for(lambda: on_topic(settings, topics.province("IR-01")), 90, "the worker to start")
    request = submission(province="IR-02")
    send(settings, request)
    wait_for(lambda: on_topic(settings, topics.province("IR-02")), 30, "the referral")
    return request


def test_breach_is_emitted_once_even_when_the_worker_is_killed_before_the_deadline(
    settings: Settings, tmp_path: Path
) -> None:
    settings = always_open_with(settings, tmp_path, SHORT_POLICY)
    topics = Topics(settings.topic_namespace)
    first = start(settings, "worker", log=tmp_path / "worker-1.log")
    try:
        request = referred_after_warm_up(settings)
        time.sleep(3)  # let the worker commit its offsets and table
    finally:
        first.kill()
    deadline = request.occurred_at.timestamp() + SHORT_POLICY_SECONDS
    time.sleep(max(0.0, deadline - time.time() + 2))  # the deadline passes while it is down

    second = start(settings, "worker", log=tmp_path / "worker-2.log")
    try:
        breaches = wait_for(
            lambda: [
                e
                for e in on_topic(settings, topics.sla)
                if isinstance(e, SlaBreached) and e.request_id == request.request_id
            ],
            90,
            "the breach after the restart",
        )
        restarted = time.time()
        time.sleep(4)  # anything extra would show up now
        facts = [
            e
            for e in on_topic(settings, topics.sla)
            if getattr(e, "request_id", None) == request.request_id
        ]
    finally:
        second.stop()
    breach = breaches[0]
    assert isinstance(breach, SlaBreached)
    assert breach.clock == "FIRST_RESPONSE"
    assert abs(breach.due_at.timestamp() - deadline) < 1.5
    assert [type(f).__name__ for f in facts].count("SlaBreached") == 1
    warnings = [f for f in facts if isinstance(f, SlaWarning)]
    assert len({w.event_id for w in warnings}) == len(warnings) == 1
    assert restarted - deadline < 90


KEPT_POLICY_SECONDS = 40
KEPT_POLICY = single_policy(
    "test-kept",
    first_response_hours=KEPT_POLICY_SECONDS / 3600,
    resolution_hours=1000,
    warning_percents=[50],
)


def test_a_worker_stopped_cleanly_keeps_its_states_and_timers_and_breaches_after_a_restart(
    settings: Settings, tmp_path: Path
) -> None:
    """RocksDB store (the default): a restart after a clean stop takes its states from disk and
    its SLA timers from the file written at the stop, and the breach still comes, once."""
    assert settings.worker_store == "rocksdb"
    settings = always_open_with(settings, tmp_path, KEPT_POLICY)
    topics = Topics(settings.topic_namespace)
    first = start(settings, "worker", log=tmp_path / "worker-1.log")
    try:
        request = referred_after_warm_up(settings)
    finally:
        assert first.stop() == 0
    assert "kept the SLA timers of 2 requests on" in first.output()
    deadline = request.occurred_at.timestamp() + KEPT_POLICY_SECONDS

    second = start(settings, "worker", log=tmp_path / "worker-2.log")
    try:
        wait_for(lambda: "recovered " in second.output(), 90, "the second worker's recovery")
        recovered = next(line for line in second.output().splitlines() if "recovered " in line)
        # every partition it holds: its timers as kept, not worked out from the states
        assert "recovered 0 requests, 2 with running SLA clocks" in recovered, recovered
        assert f"({settings.partitions} of {settings.partitions} partitions'" in recovered
        breaches = wait_for(
            lambda: [
                e
                for e in on_topic(settings, topics.sla)
                if isinstance(e, SlaBreached) and e.request_id == request.request_id
            ],
            deadline - time.time() + 60,
            "the breach after the restart",
        )
        time.sleep(3)  # anything extra would show up now
        facts = [
            e
            for e in on_topic(settings, topics.sla)
            if getattr(e, "request_id", None) == request.request_id
        ]
        warm = [e for e in on_topic(settings, topics.province("IR-01")) if hasattr(e, "event_id")]
    finally:
        second.stop()
    breach = breaches[0]
    assert isinstance(breach, SlaBreached)
    assert abs(breach.due_at.timestamp() - deadline) < 1.5
    assert [type(f).__name__ for f in facts].count("SlaBreached") == 1
    assert [type(f).__name__ for f in facts].count("SlaWarning") == 1
    # the restart did not route the warm-up submission again (its copies keep their ids)
    assert len({e.event_id for e in warm}) == len(warm) > 0


def test_messages_on_another_partition_are_moved_to_their_requests_partition(
    settings: Settings, worker: Process
) -> None:
    """An upstream that publishes without a key, or with another partitioner (librdkafka's
    default is CRC-32), puts a request's events on other partitions than samt124 keeps it on."""
    from kafka import KafkaProducer

    topics = Topics(settings.topic_namespace)
    keyed = submission(province="IR-05")
    keyless = submission(province="IR-05")
    assigned = assignment(keyed)
    home = partition_of(wire.key(keyed), settings.partitions)
    elsewhere = (home + 1) % settings.partitions
    producer = KafkaProducer(**settings.kafka_client_options(), acks="all")
    try:
        for event in (keyed, assigned):
            producer.send(
                topics.intake, key=wire.key(event), value=wire.encode(event), partition=elsewhere
            ).get(timeout=30)
        keyless_home = partition_of(wire.key(keyless), settings.partitions)
        producer.send(
            topics.intake,
            key=None,
            value=wire.encode(keyless),
            partition=(keyless_home + 1) % settings.partitions,
        ).get(timeout=30)
    finally:
        producer.close()

    def routed() -> dict[str, list[str]] | None:
        seen: dict[str, list[str]] = {keyed.request_id: [], keyless.request_id: []}
        for event in on_topic(settings, topics.province("IR-05")):
            request_id = getattr(event, "request_id", "")
            if request_id in seen:
                seen[request_id].append(type(event).__name__)
        return seen if len(seen[keyed.request_id]) >= 4 and seen[keyless.request_id] else None

    seen = wait_for(routed, 90, "the moved events on the province topic")
    assert seen[keyed.request_id] == [
        "RequestReferred",
        "RequestSubmitted",
        "SlaDeadlinesSet",
        "RequestAssigned",
    ]
    assert seen[keyless.request_id] == ["RequestReferred", "RequestSubmitted", "SlaDeadlinesSet"]
    copies = [r for r in read_topics(settings, [topics.intake]) if "moved-from" in r.headers]
    by_value = {r.value: r for r in copies}
    for event in (keyed, assigned):
        copy = by_value[wire.encode(event)]
        assert copy.partition == home
        assert copy.key == wire.key(event)
        assert copy.headers["moved-from"].startswith(f"{topics.intake}[{elsewhere}]@".encode())
    copy = by_value[wire.encode(keyless)]
    assert copy.partition == keyless_home
    assert copy.key == wire.key(keyless)
    assert worker.popen.poll() is None


def test_worker_refuses_topics_whose_partitions_are_not_as_configured(
    settings: Settings, tmp_path: Path
) -> None:
    """Created elsewhere with 2 partitions while SAMT124_PARTITIONS says 4: requests would be
    kept on partitions the topics do not have, so the worker says so and does not start."""
    ensure_topics(replace_partitions(settings, 2))
    process = start(settings, "worker", log=tmp_path / "worker.log")
    assert process.popen.wait(timeout=120) == 2
    said = (tmp_path / "worker.log").read_text()
    topics = Topics(settings.topic_namespace)
    assert f"{topics.intake} has 2" in said
    assert f"{topics.sla} has 2" in said
    assert "set SAMT124_PARTITIONS" in said
    assert "Traceback" not in said
    assert "WARNING" not in said


def replace_partitions(settings: Settings, partitions: int) -> Settings:
    return settings.model_copy(update={"partitions": partitions})


TRANSFER_SECONDS = 3  # the request moves to another ministry this long after submission
SAMT_SECONDS = 10  # SAMT's resolution target
MINISTRY_SECONDS = 20  # the other ministry's resolution target, from the transfer
TRANSFER_POLICIES = {
    "versions": [
        {
            "version": "test-transfer",
            "effective_from": "2000-01-01T00:00:00+03:30",
            "warning_percents": [],
            "escalation": {},
            "policies": [
                {
                    "id": "other-ministry",
                    "match": {"body_kinds": ["OTHER_MINISTRY"]},
                    "hours": {"FIRST_RESPONSE": 1000, "RESOLUTION": MINISTRY_SECONDS / 3600},
                },
                {
                    "id": "samt",
                    "match": {},
                    "hours": {"FIRST_RESPONSE": 1000, "RESOLUTION": SAMT_SECONDS / 3600},
                },
            ],
        }
    ]
}


def test_a_transfer_to_another_ministry_starts_a_resolution_cycle_under_its_policy(
    settings: Settings, tmp_path: Path
) -> None:
    """The transfer rule end to end (README "Transfers"): SAMT's deadline passes after the
    request left for another ministry without a breach; the breach comes at the other
    ministry's deadline, counted from the transfer, in cycle 2 under its policy."""
    settings = always_open_with(settings, tmp_path, TRANSFER_POLICIES)
    topics = Topics(settings.topic_namespace)
    worker = start(settings, "worker", log=tmp_path / "worker.log")
    try:
        request = referred_after_warm_up(settings)
        moved_at = request.occurred_at + timedelta(seconds=TRANSFER_SECONDS)
        time.sleep(max(0.0, moved_at.timestamp() - time.time()))
        transfer = RequestTransferred(
            event_id=str(uuid.uuid4()),
            request_id=request.request_id,
            occurred_at=moved_at,
            recorded_at=datetime.now(UTC),
            source="test",
            actor="samt-org:IR-02",
            to_province="IR-02",
            to_body_id="ministry:agriculture",
            to_body_kind="OTHER_MINISTRY",
            reason="out of remit",
        )
        send(settings, transfer)

        def resolution_breaches() -> list[SlaBreached]:
            return [
                e
                for e in on_topic(settings, topics.sla)
                if isinstance(e, SlaBreached)
                and e.request_id == request.request_id
                and e.clock == "RESOLUTION"
            ]

        breaches = wait_for(resolution_breaches, 90, "the other ministry's breach")
        time.sleep(3)  # anything extra would show up now
        breaches = resolution_breaches()
    finally:
        worker.stop()
    assert len(breaches) == 1, breaches  # none for SAMT's deadline, passed after the transfer
    (breach,) = breaches
    assert (breach.cycle, breach.policy_id) == (2, "other-ministry")
    assert breach.body_id == "ministry:agriculture"
    expected = moved_at.timestamp() + MINISTRY_SECONDS
    assert abs(breach.due_at.timestamp() - expected) < 1.5


HISTORY_POLICY = single_policy("test-history", first_response_hours=1, resolution_hours=1000)
CHUNK_GAP = 5.0  # seconds between chunks of history, longer than a pause the worker once
# took for the end of the log (2 s, when it fired every deadline up to the wall clock)


def test_history_published_in_chunks_breaches_by_event_time_only(
    settings: Settings, tmp_path: Path
) -> None:
    """Requests of three days ago, published in chunks with pauses between them: a deadline
    fires when the event time of its request's partition passes it, never because the worker
    paused between two chunks or read another partition further while the answer was still
    to come."""
    settings = always_open_with(settings, tmp_path, HISTORY_POLICY)
    topics = Topics(settings.topic_namespace)
    t0 = datetime.now(UTC) - timedelta(days=3)
    # one intake partition's history: event time there is what moves its requests' timers
    same: list[str] = []
    while len(same) < 3:
        request_id = f"req-{uuid.uuid4().hex[:12]}"
        if partition_of(request_id.encode(), settings.partitions) == 0:
            same.append(request_id)
    answered = submission(province="IR-05", at=t0, request_id=same[0])  # answered at 30 min
    silent = submission(province="IR-05", at=t0 + timedelta(minutes=10), request_id=same[1])
    later = submission(province="IR-05", at=t0 + timedelta(hours=2), request_id=same[2])
    elsewhere = submission(province="IR-05", at=t0 + timedelta(hours=5))  # another partition
    while partition_of(elsewhere.request_id.encode(), settings.partitions) == 0:
        elsewhere = submission(province="IR-05", at=t0 + timedelta(hours=5))
    response = RequestResponded(
        event_id=str(uuid.uuid4()),
        request_id=answered.request_id,
        occurred_at=t0 + timedelta(minutes=30),
        recorded_at=t0 + timedelta(minutes=30),
        source="test",
        actor="samt-org:IR-05",
        body_id="samt-org:IR-05",
        message="پاسخ",
    )

    def deadlines(request: RequestSubmitted) -> int:
        return sum(
            1
            for e in on_topic(settings, topics.province("IR-05"))
            if isinstance(e, SlaDeadlinesSet) and e.request_id == request.request_id
        )

    def breached() -> dict[str, SlaBreached]:
        return {
            e.request_id: e for e in on_topic(settings, topics.sla) if isinstance(e, SlaBreached)
        }

    worker = start(settings, "worker", log=tmp_path / "worker.log")
    try:
        send(settings, answered, elsewhere)  # a partition read further than the other
        wait_for(lambda: deadlines(answered) == deadlines(elsewhere) == 1, 90, "the first chunk")
        time.sleep(CHUNK_GAP)
        send(settings, silent, response)
        wait_for(
            lambda: deadlines(answered) == 2 and deadlines(silent) == 1, 30, "the second chunk"
        )
        time.sleep(CHUNK_GAP)
        send(settings, later)
        wait_for(lambda: silent.request_id in breached(), 30, "the silent request's breach")
        time.sleep(2)  # anything extra would show up now
        found = breached()
    finally:
        worker.stop()
    assert answered.request_id not in found, found[answered.request_id]
    breach = found[silent.request_id]
    assert breach.clock == "FIRST_RESPONSE"
    due = silent.occurred_at + timedelta(hours=1)
    assert abs(breach.due_at - due) < timedelta(milliseconds=1)  # milliseconds on the wire
    # event time has not reached their deadlines yet, each on its own partition
    assert later.request_id not in found
    assert elsewhere.request_id not in found
