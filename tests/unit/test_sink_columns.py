"""The sink's fast path gives the rows rows.py describes, for every event type it meets."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given, settings

from consumers.sink.columns import event_row_of, seconds, sla_row_of
from consumers.sink.loader import Message, build_batch
from consumers.sink.rows import EVENT_COLUMNS, SLA_COLUMNS, Position, event_row, is_sla, sla_row
from devtools.bench import workload
from samt124.contract import wire
from samt124.domain.events import Event, event_type
from samt124.kafka.topics import Topics
from tests.unit.test_wire import EVENTS

NOW = datetime(2025, 6, 1, 8, 30, 15, tzinfo=UTC)
KEY = b"k"
TIMES = {"occurred_at", "recorded_at", "ingested_at", "due_at"}


def _as_stored(columns: tuple[str, ...], row: tuple[object, ...]) -> tuple[object, ...]:
    """A reference row with its instants as the epoch seconds a DateTime column stores."""
    return tuple(
        seconds(value) if name in TIMES and isinstance(value, datetime) else value
        for name, value in zip(columns, row, strict=True)
    )


def test_fast_rows_equal_the_reference_rows_for_a_simulated_workload() -> None:
    events = workload.events(3_000)
    seen = set()
    for offset, event in enumerate(events):
        at = Position("ns.province.IR-23", offset % 4, offset)
        name, record = wire.default_codec().decode_record(wire.encode(event))
        assert name == event_type(event)
        seen.add(name)
        expected = _as_stored(EVENT_COLUMNS, event_row(event, at, "IR-23", NOW, KEY))
        assert event_row_of(name, record, at, "IR-23", seconds(NOW), KEY) == expected
        fact = sla_row_of(name, record, seconds(NOW))
        if is_sla(event):
            assert fact == _as_stored(SLA_COLUMNS, sla_row(event, NOW))  # type: ignore[arg-type]
        else:
            assert fact is None
    # the workload covers the request lifecycle; SLA facts come from the worker, not here
    assert {"RequestSubmitted", "LetterRegistered", "RequestTransferred"} <= seen


@given(EVENTS)
@settings(max_examples=300, deadline=None)
def test_fast_rows_equal_the_reference_rows_for_any_event_of_any_type(event: Event) -> None:
    at = Position("ns.sla", 0, 7)
    name, record = wire.default_codec().decode_record(wire.encode(event))
    expected = _as_stored(EVENT_COLUMNS, event_row(event, at, "IR-08", NOW, KEY))
    assert event_row_of(name, record, at, "IR-08", seconds(NOW), KEY) == expected
    fact = sla_row_of(name, record, seconds(NOW))
    if is_sla(event):
        assert fact == _as_stored(SLA_COLUMNS, sla_row(event, NOW))  # type: ignore[arg-type]
    else:
        assert fact is None


def test_a_batch_holds_the_fast_rows_and_offsets() -> None:
    events = workload.events(200)
    topics = Topics("ns")
    messages = [
        Message(Position(topics.province("IR-23"), 1, 100 + i), wire.encode(e))
        for i, e in enumerate(events)
    ]
    batch = build_batch(messages, topics, NOW, KEY)
    assert len(batch.events) == len(events)
    assert batch.next_offsets == {(topics.province("IR-23"), 1): 100 + len(events)}
    assert [row[0] for row in batch.events] == [e.event_id for e in events]
