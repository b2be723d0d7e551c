"""The sink's fast path gives the rows rows.py describes, for every event type it meets."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime, timedelta

import pytest
from fastavro import schemaless_writer
from hypothesis import given, settings
from hypothesis import strategies as st

from consumers.sink.columns import day_text, event_row_of, iso_of_ms, seconds, sla_row_of
from consumers.sink.dead_letters import dead_letter_row
from consumers.sink.loader import Message, batch_token, build_batch
from consumers.sink.rows import (
    EVENT_COLUMNS,
    SLA_COLUMNS,
    Position,
    Row,
    deadline_rows,
    error_row,
    event_row,
    is_sla,
    sla_row,
)
from devtools.bench import workload
from samt124.contract import wire
from samt124.contract.wire import MAX_MS, MIN_MS, DecodeError
from samt124.domain.events import Event, SlaDeadlinesSet, event_type, to_record
from samt124.kafka.topics import Topics
from tests.unit.test_wire import EVENTS

NOW = datetime(2025, 6, 1, 8, 30, 15, tzinfo=UTC)
KEY = b"k"
TIMES = {"occurred_at", "recorded_at", "ingested_at", "due_at"}
TOPICS = Topics("ns")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _as_stored(columns: tuple[str, ...], row: tuple[object, ...]) -> tuple[object, ...]:
    """A reference row with its instants as the epoch seconds a DateTime column stores."""
    return tuple(
        seconds(value) if name in TIMES and isinstance(value, datetime) else value
        for name, value in zip(columns, row, strict=True)
    )


def _fast_rows(event: Event, at: Position, province: str) -> tuple[Row, Row | None]:
    codec = wire.default_codec()
    name, record = codec.decode_raw(wire.encode(event))
    assert name == event_type(event)
    fields = codec.raw_fields[name]
    return (
        event_row_of(name, record, fields, at, province, seconds(NOW), KEY),
        sla_row_of(name, record, seconds(NOW)),
    )


def _check(event: Event, at: Position, province: str) -> None:
    try:
        expected = _as_stored(EVENT_COLUMNS, event_row(event, at, province, NOW, KEY))
    except ValueError:  # jdatetime's calendar ends before datetime's: both refuse the instant
        with pytest.raises(ValueError, match="year is out of range"):
            _fast_rows(event, at, province)
        return
    fast, fact = _fast_rows(event, at, province)
    assert fast == expected
    if is_sla(event):
        assert fact == _as_stored(SLA_COLUMNS, sla_row(event, NOW))  # type: ignore[arg-type]
    else:
        assert fact is None


def test_fast_rows_equal_the_reference_rows_for_a_simulated_workload() -> None:
    events = workload.events(3_000)
    for offset, event in enumerate(events):
        _check(event, Position("ns.province.IR-23", offset % 4, offset), "IR-23")
    # the workload covers the request lifecycle; SLA facts come from the worker, not here
    seen = {event_type(e) for e in events}
    assert {"RequestSubmitted", "LetterRegistered", "RequestTransferred"} <= seen


@given(EVENTS)
@settings(max_examples=600, deadline=None)
def test_fast_rows_equal_the_reference_rows_for_any_event_of_any_type(event: Event) -> None:
    _check(event, Position("ns.sla", 0, 7), "IR-08")


@given(EVENTS)
@settings(max_examples=300, deadline=None)
def test_a_raw_record_is_the_logical_record_with_integer_times(event: Event) -> None:
    codec = wire.default_codec()
    data = wire.encode(event)
    name, raw = codec.decode_raw(data)
    _, logical = codec.decode_record(data)
    assert raw.keys() == logical.keys()
    fields = codec.raw_fields[name]
    for key, value in logical.items():
        if value is not None and key in fields.millis:
            assert EPOCH + timedelta(milliseconds=raw[key]) == value
            assert iso_of_ms(raw[key]) == value.isoformat()
        elif value is not None and key in fields.days:
            assert date(1970, 1, 1) + timedelta(days=raw[key]) == value
            assert day_text(raw[key]) == value.isoformat()
        else:
            assert raw[key] == value


def _written(event: Event, **changes: object) -> bytes:
    """``event`` encoded with its current schema after ``changes`` to its record."""
    codec = wire.default_codec()
    name = event_type(event)
    schema, fp = codec._current[name]
    record = {**to_record(event), **changes}
    out = io.BytesIO()
    out.write(wire.MARKER + fp)
    schemaless_writer(out, schema, record)
    return out.getvalue()


def _same_outcome(data: bytes) -> None:
    """decode_raw takes and refuses what decode_record does, with the same reason."""
    codec = wire.default_codec()
    reason: str | None
    try:
        name, logical = codec.decode_record(data)
    except DecodeError as error:
        reason = error.reason
    else:
        reason = None
    if reason is not None:
        with pytest.raises(DecodeError) as refused:
            codec.decode_raw(data)
        assert refused.value.reason == reason
        return
    raw_name, raw = codec.decode_raw(data)
    assert raw_name == name
    assert raw["event_id"] == logical["event_id"]


@given(EVENTS, st.sampled_from(["occurred_at", "recorded_at"]), st.integers())
@settings(max_examples=200, deadline=None)
def test_times_a_datetime_cannot_hold_are_refused_as_before(
    event: Event, field: str, ms: int
) -> None:
    ms = max(-(2**63), min(2**63 - 1, ms))
    _same_outcome(_written(event, **{field: ms}))


def test_time_bounds_and_uuid_forms_are_decided_as_before() -> None:
    event = workload.events(1)[0]
    for ms in (MIN_MS - 1, MIN_MS, -1, 0, 1, MAX_MS, MAX_MS + 1, -(2**63), 2**63 - 1):
        _same_outcome(_written(event, occurred_at=ms))
    for text in (event.event_id.upper(), event.event_id.replace("-", ""), "not-a-uuid", ""):
        _same_outcome(_written(event, event_id=text))
    _, record = wire.default_codec().decode_raw(_written(event, event_id=event.event_id.upper()))
    assert record["event_id"] == event.event_id


@given(st.integers(min_value=MIN_MS, max_value=MAX_MS))
@settings(max_examples=2_000, deadline=None)
def test_iso_text_of_milliseconds_is_the_datetimes(ms: int) -> None:
    assert iso_of_ms(ms) == (EPOCH + timedelta(milliseconds=ms)).isoformat()


def _reference_batch(messages: list[Message]) -> dict[str, list[Row]]:
    """The tables of a batch, row by row through rows.py and the event objects."""
    codec = wire.default_codec()
    tables: dict[str, list[Row]] = {k: [] for k in ("events", "sla", "errors", "dead", "dl")}
    for m in messages:
        at = m.position
        if at.topic == TOPICS.dlq:
            when = datetime.fromtimestamp(m.timestamp_ms / 1000, UTC)
            tables["dead"].append(dead_letter_row(at, m.key, m.value, m.headers, when, NOW))
            continue
        try:
            codec.decode_record(m.value)
        except DecodeError as error:
            tables["errors"].append(error_row(at, error.reason, m.value, NOW))
            continue
        event = wire.decode(m.value)
        if isinstance(event, SlaDeadlinesSet):
            tables["dl"].extend(deadline_rows(event, at, NOW))
            continue
        province = (
            at.topic.removeprefix(TOPICS.province_prefix) if TOPICS.is_province(at.topic) else ""
        )
        tables["events"].append(_as_stored(EVENT_COLUMNS, event_row(event, at, province, NOW, KEY)))
        if is_sla(event):
            tables["sla"].append(_as_stored(SLA_COLUMNS, sla_row(event, NOW)))  # type: ignore[arg-type]
    return tables


WHERE = st.sampled_from(
    [TOPICS.province("IR-23"), TOPICS.province("IR-08"), TOPICS.sla, TOPICS.dlq, "other"]
)
# instants jdatetime can put on its calendar (near year 9999 both paths raise alike, above)
STORABLE = EVENTS.filter(lambda e: e.occurred_at.year < 9_000).map(wire.encode)
PAYLOAD = st.one_of(STORABLE, STORABLE, st.binary(max_size=40))


@given(st.lists(st.tuples(WHERE, st.integers(0, 2), PAYLOAD), max_size=40), st.randoms())
@settings(max_examples=150, deadline=None)
def test_a_batch_holds_the_reference_rows_of_every_table(
    items: list[tuple[str, int, bytes]], order: object
) -> None:
    messages = [
        Message(
            Position(topic, partition, 10 + i), value, b"key", (("a", b"b"),), 1_700_000_000_000
        )
        for i, (topic, partition, value) in enumerate(items)
    ]
    order.shuffle(messages)  # type: ignore[attr-defined]
    batch = build_batch(messages, TOPICS, NOW, KEY)
    expected = _reference_batch(messages)
    assert batch.events == expected["events"]
    assert batch.sla == expected["sla"]
    assert batch.errors == expected["errors"]
    assert batch.dead_letters == expected["dead"]
    assert batch.deadlines == expected["dl"]
    assert batch.token == batch_token(messages)
    ends: dict[tuple[str, int], int] = {}
    for m in messages:
        where = (m.position.topic, m.position.partition)
        ends[where] = max(ends.get(where, 0), m.position.offset + 1)
    assert batch.next_offsets == ends


def test_a_batch_holds_the_fast_rows_and_offsets() -> None:
    events = workload.events(200)
    messages = [
        Message(Position(TOPICS.province("IR-23"), 1, 100 + i), wire.encode(e))
        for i, e in enumerate(events)
    ]
    batch = build_batch(messages, TOPICS, NOW, KEY)
    assert batch.events == _reference_batch(messages)["events"]
    assert batch.next_offsets == {(TOPICS.province("IR-23"), 1): 100 + len(events)}
    assert batch.token == batch_token(messages)
