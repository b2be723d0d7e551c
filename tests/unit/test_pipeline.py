"""What the worker publishes for each intake message (no Faust, no broker)."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from samt124.contract import wire
from samt124.domain.events import (
    OfficeClosureAnnounced,
    RequestAssigned,
    Requester,
    RequestEscalated,
    RequestReferred,
    RequestSubmitted,
    SlaBreached,
    SlaDeadlinesSet,
    SlaWarning,
)
from samt124.kafka.topics import partition_of
from samt124.settings import Settings
from streams.pipeline import MOVED_FROM, Pipeline, Step, Where

WALL = datetime(2025, 7, 1, 9, 0, tzinfo=UTC)
WHERE = Where("samt124.intake", 2, 41)


def pipeline() -> Pipeline:
    return Pipeline.load(Settings())


def submitted(**changes: object) -> RequestSubmitted:
    event = RequestSubmitted(
        event_id=str(uuid.uuid4()),
        request_id="req-42",
        occurred_at=WALL - timedelta(minutes=5),
        recorded_at=WALL - timedelta(minutes=5),
        source="portal",
        channel="WEB_PORTAL",
        requester=Requester(national_id="10101010101", name="شرکت"),
        category="IND-PERMIT",
        province="IR-30",
        subject="پروانه",
        body="درخواست",
        priority="NORMAL",
    )
    return replace(event, **changes)  # type: ignore[arg-type]


def home(event: object, p: Pipeline) -> Where:
    """Where Kafka's default partitioner puts the event: on its request's intake partition."""
    return Where("samt124.intake", partition_of(wire.key(event), p.partitions), 41)  # type: ignore[arg-type]


def intake(p: Pipeline, event: object, state: object = None, key: bytes | None = None) -> Step:
    raw = wire.encode(event)  # type: ignore[arg-type]
    return p.on_intake(
        state,  # type: ignore[arg-type]
        key if key is not None else wire.key(event),  # type: ignore[arg-type]
        raw,
        wire.headers(event),  # type: ignore[arg-type]
        home(event, p),
        WALL,
    )


def test_a_submission_goes_to_its_province_with_its_referral_first() -> None:
    p = pipeline()
    event = submitted()
    step = intake(p, event)
    assert step.dead_letter is None
    assert [o.topic for o in step.outgoing] == ["samt124.province.IR-30"] * 3
    referral = wire.decode(step.outgoing[0].value)
    assert isinstance(referral, RequestReferred)
    assert referral.body_id == "khaneh-samt:IR-30"
    assert referral.causation_id == event.event_id
    assert step.outgoing[1].value == wire.encode(event)
    deadlines = wire.decode(step.outgoing[2].value)  # where the clocks stand, after the event
    assert isinstance(deadlines, SlaDeadlinesSet)
    assert deadlines.causation_id == event.event_id
    assert step.outgoing[2].key == wire.key(event)
    assert step.state is not None
    assert step.state.province == "IR-30"


def test_the_same_event_again_is_a_duplicate_with_nothing_to_publish() -> None:
    p = pipeline()
    event = submitted()
    first = intake(p, event)
    again = intake(p, event, first.state)
    assert again.duplicate
    assert again.outgoing == ()


def test_undecodable_bytes_become_a_dead_letter_with_reason_and_origin() -> None:
    p = pipeline()
    step = p.on_intake(None, b"k", b"\xc3\x01garbage!!", [("x", b"1")], WHERE, WALL)
    (dead,) = step.outgoing
    headers = dict(dead.headers)
    assert dead.topic == "samt124.dlq"
    assert dead.value == b"\xc3\x01garbage!!"
    assert dead.key == b"k"
    assert headers["x"] == b"1"
    assert headers["dlq-partition"] == b"2"
    assert headers["dlq-offset"] == b"41"
    assert step.dead_letter is not None
    assert "fingerprint" in step.dead_letter


def test_invalid_events_and_wrong_keys_and_foreign_sla_facts_are_dead_letters() -> None:
    p = pipeline()
    bad_province = intake(p, submitted(province="IR-77"))
    assert bad_province.dead_letter is not None
    assert "province" in bad_province.dead_letter
    wrong_key = intake(p, submitted(), key=b"someone-else")
    assert wrong_key.dead_letter is not None
    assert "key" in wrong_key.dead_letter
    fact = SlaBreached(
        event_id=str(uuid.uuid4()),
        request_id="req-42",
        occurred_at=WALL,
        recorded_at=WALL,
        source="elsewhere",
        clock="RESOLUTION",
        cycle=1,
        due_at=WALL,
        body_id="samt-org:IR-30",
        province="IR-30",
        policy_id="normal",
        policy_version="1404.1",
    )
    foreign = intake(p, fact)
    assert foreign.dead_letter is not None
    assert "samt124 itself" in foreign.dead_letter


def test_a_closure_moves_the_calendar_and_is_forwarded() -> None:
    p = pipeline()
    closure = OfficeClosureAnnounced(
        event_id=str(uuid.uuid4()),
        request_id="closure:IR-30:2025-07-02",
        occurred_at=WALL - timedelta(hours=1),
        recorded_at=WALL - timedelta(hours=1),
        source="governorate",
        province="IR-30",
        first_day=date(2025, 7, 2),
        last_day=date(2025, 7, 3),
        reason="گرما",
    )
    step = intake(p, closure)
    assert step.closure is not None
    assert [o.topic for o in step.outgoing] == ["samt124.province.IR-30"]
    noon = datetime(2025, 7, 2, 8, 0, tzinfo=UTC)
    assert not p.calendar.is_working_time("IR-30", noon)
    assert p.calendar.is_working_time("IR-23", noon)


def test_timer_facts_are_folded_into_the_state_they_are_stored_with() -> None:
    p = pipeline()
    old = WALL - timedelta(days=30)  # its clocks have long breached
    step = intake(p, submitted(occurred_at=old, recorded_at=old))
    assert step.state is not None
    fired = p.due(step.state, WALL, WALL)
    assert fired.outgoing
    assert all(o.topic == "samt124.sla" for o in fired.outgoing)
    assert [wire.decode(o.value) for o in fired.outgoing] == list(fired.facts)
    assert any(isinstance(f, SlaBreached) for f in fired.facts)
    assert fired.state is not None
    assert {f.event_id for f in fired.facts} <= set(fired.state.seen)
    again = p.due(fired.state, WALL, WALL)  # the stored state: nothing more is due
    assert (again.outgoing, again.state) == ((), None)
    assert fired.due is None or fired.due > WALL
    assert again.due == fired.due
    # a state that was not stored (a crash before it reached the changelog): the same facts,
    # with the same ids, which collapse downstream
    repeat = p.due(step.state, WALL, WALL)
    assert [f.event_id for f in repeat.facts] == [f.event_id for f in fired.facts]
    # an intake event after the timer's facts brings none of them again
    assigned = RequestAssigned(
        event_id=str(uuid.uuid4()),
        request_id="req-42",
        occurred_at=WALL,
        recorded_at=WALL,
        source="portal",
        actor=fired.state.body_id,
        body_id=fired.state.body_id,
        assignee="operator-7",
    )
    after = intake(p, assigned, fired.state)
    assert after.dead_letter is None, after.dead_letter
    assert after.state is not None
    assert after.facts == ()
    assert not [o for o in after.outgoing if o.topic == "samt124.sla"]
    # and without them (the timer had not fired yet) it brings them, marked in its state
    before = intake(p, assigned, step.state)
    assert [f.event_id for f in before.facts] == [f.event_id for f in fired.facts]
    assert before.state is not None
    assert before.state.emitted == after.state.emitted


# murmur2 of these keys as the Java client's own tests give it (org.apache.kafka.common.utils)
JAVA_MURMUR2 = {
    b"21": -973932308,
    b"foobar": -790332482,
    b"a-little-bit-long-string": -985981536,
    b"": 275646681,
}


@pytest.mark.parametrize("partitions", [1, 4, 31, 2**31 - 1])
def test_a_request_lives_where_the_java_clients_default_partitioner_puts_it(
    partitions: int,
) -> None:
    for key, java in JAVA_MURMUR2.items():  # Utils.toPositive(murmur2(key)) % partitions
        assert partition_of(key, partitions) == (java & 0x7FFFFFFF) % partitions


def test_murmur2_is_kafka_pythons_for_every_length_and_byte() -> None:
    import random
    import uuid

    from kafka.partitioner.default import murmur2 as kafka_python_murmur2

    from samt124.kafka.topics import murmur2

    rng = random.Random(124)
    keys = [
        bytes(rng.randrange(256) for _ in range(length)) for length in range(70) for _ in range(40)
    ]
    keys += [str(uuid.UUID(int=rng.getrandbits(128))).encode() for _ in range(3_000)]
    keys += [bytes([byte]) * length for byte in (0, 0x7F, 0x80, 0xFF) for length in range(1, 12)]
    for key in keys:
        assert murmur2(key) == kafka_python_murmur2(key), key


@pytest.mark.parametrize("key", [b"req-42", None])
def test_a_message_on_another_partition_is_moved_to_its_requests_partition(
    key: bytes | None,
) -> None:
    p = pipeline()
    event = submitted()
    right = home(event, p).partition
    wrong = (right + 1) % p.partitions
    raw = wire.encode(event)
    step = p.on_intake(
        None, key, raw, [("event-type", b"RequestSubmitted")], Where(WHERE.topic, wrong, 7), WALL
    )
    assert step.moved_to == right
    assert step.state is None  # handled when it is read on its own partition
    assert step.dead_letter is None
    [moved] = step.outgoing
    assert (moved.topic, moved.partition, moved.key, moved.value) == (
        p.topics.intake,
        right,
        b"req-42",
        raw,
    )
    headers = dict(moved.headers)
    assert headers["event-type"] == b"RequestSubmitted"
    assert headers[MOVED_FROM] == f"samt124.intake[{wrong}]@7".encode()
    # read back on its own partition, it is routed as usual
    routed = p.on_intake(None, b"req-42", raw, moved.headers, Where(WHERE.topic, right, 0), WALL)
    assert routed.moved_to is None
    assert routed.state is not None
    assert [o.topic for o in routed.outgoing][:2] == [p.topics.province("IR-30")] * 2


def test_garbage_on_any_partition_is_a_dead_letter_where_it_is() -> None:
    p = pipeline()
    for partition in range(p.partitions):
        step = p.on_intake(None, b"k", b"garbage", [], Where(WHERE.topic, partition, 1), WALL)
        assert step.dead_letter is not None
        assert step.moved_to is None


# -- whatever raises while a message is handled makes it a dead letter ------------------------


def test_a_submission_from_before_the_first_rules_routes_by_the_first_version() -> None:
    p = pipeline()
    old = datetime(2012, 5, 1, 8, 0, tzinfo=UTC)  # before the first rules, policies, calendars
    step = intake(p, submitted(occurred_at=old, recorded_at=old))
    assert step.dead_letter is None
    assert step.state is not None
    assert step.state.policy_version == p.policies.versions[0].version
    referral = wire.decode(step.outgoing[0].value)
    assert isinstance(referral, RequestReferred)
    assert referral.rules_version == p.rules.versions[0].version
    assert referral.body_id == "samt-org:IR-30"  # the Alborz MoU came later
    assert step.due is not None  # its clocks run, on the first calendar version's hours


def test_an_exception_in_the_decision_is_a_dead_letter_with_its_type() -> None:
    from streams.faults import Faults

    p = pipeline()
    p.faults = Faults(rate=1.0)
    event = submitted()
    step = intake(p, event)
    (dead,) = step.outgoing
    headers = dict(dead.headers)
    assert step.failure
    assert step.state is None
    assert dead.topic == "samt124.dlq"
    assert (dead.key, dead.value) == (wire.key(event), wire.encode(event))
    assert headers["dlq-error"] == b"InjectedFault"
    assert headers["dlq-reason"].startswith(b"InjectedFault while handling the message: ")
    assert step.facts == ()


def test_a_stored_state_that_cannot_be_read_is_that_messages_dead_letter() -> None:
    p = pipeline()
    event = submitted()
    opened = intake(p, event)
    assert opened.state is not None
    later = submitted(event_id=str(uuid.uuid4()), occurred_at=WALL - timedelta(minutes=1))
    stored = opened.state.to_bytes().replace(b'"v":', b'"v":99,"was":', 1)
    step = intake(p, later, stored)
    assert step.failure
    assert b"unknown request state format" in dict(step.outgoing[0].headers)["dlq-reason"]
    # the same state as stored bytes, readable, is decoded under the guard and used
    fine = intake(p, later, opened.state.to_bytes())
    assert fine.duplicate


def test_facts_are_not_marked_emitted_when_publishing_them_fails(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    p = pipeline()
    old = WALL - timedelta(days=30)  # its clocks have long breached
    opened = intake(p, submitted(occurred_at=old, recorded_at=old))
    assert opened.state is not None
    assigned = RequestAssigned(
        event_id=str(uuid.uuid4()),
        request_id="req-42",
        occurred_at=WALL,
        recorded_at=WALL,
        source="portal",
        actor="khaneh-samt:IR-30",
        body_id="khaneh-samt:IR-30",
        assignee="operator-7",
    )
    real = wire.encode

    def broken(event: Any) -> bytes:
        if isinstance(event, SlaBreached | SlaWarning | RequestEscalated):
            raise OSError("encoder broke")
        return real(event)

    monkeypatch.setattr(wire, "encode", broken)
    with pytest.raises(OSError, match="encoder broke"):
        p.due(opened.state, WALL, WALL)
    step = intake(p, assigned, opened.state)  # brings the due facts with it
    assert step.failure
    assert step.state is None  # nothing marked emitted that was not published
    assert b"encoder broke" in dict(step.outgoing[0].headers)["dlq-reason"]
    monkeypatch.setattr(wire, "encode", real)
    fired = p.due(opened.state, WALL, WALL)  # the timer, once it can publish: all of them
    assert fired.facts
    assert {type(f) for f in fired.facts} >= {SlaBreached}
