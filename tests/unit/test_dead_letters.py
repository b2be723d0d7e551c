"""Dead letters as the worker writes them, sorted by kind and mapped to ``dead_letters`` rows."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import pytest

from consumers.clickhouse.dead_letters import DEAD_LETTER_COLUMNS
from consumers.sink.dead_letters import dead_letter_row
from consumers.sink.rows import Position
from samt124.commands.dlq import dead_letter_id, edited, field_edit
from samt124.contract import dead_letters as dl
from samt124.contract import wire
from samt124.domain.events import RequestAssigned, SlaBreached
from streams.faults import Faults
from streams.pipeline import Outgoing, Step
from tests.unit.test_pipeline import WALL, WHERE, intake, pipeline, submitted

INGESTED = datetime(2025, 7, 1, 9, 1, tzinfo=UTC)


def only_dead_letter(step: Step) -> Outgoing:
    (dead,) = step.outgoing
    assert dead.topic == "samt124.dlq"
    return dead


def row(dead: Outgoing, offset: int = 7) -> dict[str, object]:
    position = Position("samt124.dlq", 1, offset)
    values = dead_letter_row(position, dead.key, dead.value, dead.headers, INGESTED, INGESTED)
    return dict(zip(DEAD_LETTER_COLUMNS, values, strict=True))


def foreign_breach() -> SlaBreached:
    return SlaBreached(
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


def test_each_kind_of_dead_letter_the_worker_writes_is_recognised() -> None:
    p = pipeline()
    garbage = p.on_intake(None, b"k", b"\xc3\x01garbage!!", [], WHERE, WALL)
    truncated = p.on_intake(None, b"k", b"\xc3", [], WHERE, WALL)
    not_avro = p.on_intake(None, None, b"hello", [], WHERE, WALL)
    invalid = intake(p, submitted(province="IR-77"))
    wrong_key = intake(p, submitted(), key=b"someone-else")
    own_fact = intake(p, foreign_breach())
    unknown = intake(
        p,
        RequestAssigned(
            event_id=str(uuid.uuid4()),
            request_id="req-nobody",
            occurred_at=WALL,
            recorded_at=WALL,
            source="portal",
            body_id="samt-org:IR-30",
            assignee="کارشناس",
        ),
    )
    p.faults = Faults(rate=1.0)
    failure = intake(p, submitted())
    kinds = {
        name: row(only_dead_letter(step))["reason_kind"]
        for name, step in {
            "garbage": garbage,
            "truncated": truncated,
            "not_avro": not_avro,
            "invalid": invalid,
            "wrong_key": wrong_key,
            "own_fact": own_fact,
            "unknown": unknown,
            "failure": failure,
        }.items()
    }
    assert kinds == {
        "garbage": dl.UNDECODABLE,
        "truncated": dl.UNDECODABLE,
        "not_avro": dl.UNDECODABLE,
        "invalid": dl.INVALID,
        "wrong_key": dl.KEY_MISMATCH,
        "own_fact": dl.OWN_FACT,
        "unknown": dl.UNKNOWN_REQUEST,
        "failure": dl.FAILURE,
    }
    assert dl.reason_kind("something new") == dl.OTHER


def test_a_row_keeps_the_original_bytes_key_headers_and_where_it_was_read() -> None:
    p = pipeline()
    event = submitted(province="IR-77")
    dead = only_dead_letter(intake(p, event))
    stored = row(dead, offset=99)
    assert bytes.fromhex(str(stored["original_hex"])) == wire.encode(event)
    assert bytes.fromhex(str(stored["key_hex"])) == wire.key(event)
    assert (stored["topic"], stored["partition"], stored["offset"]) == ("samt124.dlq", 1, 99)
    assert stored["source_topic"] == "samt124.intake"
    assert stored["source_partition"] == int(dict(dead.headers)["dlq-partition"])
    assert stored["source_offset"] == 41
    assert stored["dead_at"] == WALL
    assert (stored["event_type"], stored["event_id"], stored["request_id"]) == (
        "RequestSubmitted",
        event.event_id,
        event.request_id,
    )
    headers = json.loads(str(stored["headers"]))
    assert headers["event-type"] == "RequestSubmitted"
    assert "province" in headers["dlq-reason"]
    assert stored["error_type"] == ""


def test_undecodable_bytes_keep_their_bytes_and_no_event_fields() -> None:
    dead = only_dead_letter(pipeline().on_intake(None, None, b"\x00\xff", [], WHERE, WALL))
    stored = row(dead)
    assert stored["original_hex"] == "00ff"
    assert stored["key_hex"] == ""
    assert (stored["event_type"], stored["event_id"], stored["request_id"]) == ("", "", "")


def test_a_dead_letter_without_the_workers_headers_still_gets_a_row() -> None:
    outgoing = Outgoing("samt124.dlq", None, b"x", [])
    stored = row(outgoing)
    assert stored["source_partition"] == stored["source_offset"] == -1
    assert stored["dead_at"] == INGESTED  # the record's time
    assert stored["reason_kind"] == dl.OTHER


def test_ids_and_edits_as_typed_on_the_command_line() -> None:
    assert dead_letter_id("2:17") == (2, 17)
    for bad in ("2", "a:1", "2:-1", ""):
        with pytest.raises(Exception, match="PARTITION:OFFSET"):
            dead_letter_id(bad)
    assert field_edit("province=IR-30") == ("province", "IR-30")
    original = {
        "province": "IR-77",
        "priority": "NORMAL",
        "requester": {"national_id": "1", "phone": "0912"},
        "attachment_count": 1,
    }
    fixed = edited(
        original,
        [
            ("province", "IR-30"),
            ("requester.national_id", "10101010101"),
            ("requester.phone", "null"),
            ("attachment_count", "3"),
        ],
    )
    assert fixed == {
        "province": "IR-30",
        "priority": "NORMAL",
        "requester": {"national_id": "10101010101", "phone": None},
        "attachment_count": 3,
    }
    assert original["province"] == "IR-77"  # the original is left as it was
