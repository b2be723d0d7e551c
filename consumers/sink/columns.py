"""The sink's fast path: Avro records straight to ClickHouse rows, without event objects.

:mod:`consumers.sink.rows` says what each column holds, one event at a time
(:func:`~consumers.sink.rows.event_row`, :func:`~consumers.sink.rows.sla_row`). This module
computes the same rows from the decoded Avro record, without building the event and turning it
back into a record, and gives times as epoch seconds (what a ``DateTime`` column stores; both
engines take them as they are). ``tests/unit/test_sink_columns.py`` holds the two equal for
every event type the simulator writes. Pure: no I/O.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date, datetime
from functools import cache
from typing import Any

from consumers.sink.rows import PRIVATE_FIELDS, Position, Row, requester_hash
from samt124.domain.events import EVENT_TYPES, SLA_EVENT_TYPES
from samt124.domain.tehran_time import jalali

INTAKE_TYPES = frozenset({"RequestSubmitted", "LetterRegistered"})


@cache
def _public_fields(name: str) -> frozenset[str]:
    """The fields of event type ``name`` that ``payload`` keeps (the event's, minus personal)."""
    import dataclasses

    return frozenset(f.name for f in dataclasses.fields(EVENT_TYPES[name])) - PRIVATE_FIELDS


def _iso(value: Any) -> str:
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


_dumps: Callable[[Any], str] = json.JSONEncoder(
    ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=_iso
).encode


def payload_of(name: str, record: dict[str, Any]) -> str:
    """:func:`consumers.sink.rows.payload` of the event whose Avro record this is."""
    keep = _public_fields(name)
    return _dumps({k: v for k, v in record.items() if k in keep})


def seconds(t: datetime) -> int:
    """Epoch seconds of an aware instant, as a ``DateTime`` column stores it."""
    return int(t.timestamp())


def _where(name: str, record: dict[str, Any], topic_province: str) -> tuple[str, str, str]:
    if name == "RequestReferred":
        return record["province"], record["body_id"], record["body_kind"]
    if name == "RequestTransferred":
        return record["to_province"], record["to_body_id"], record["to_body_kind"]
    return record.get("province") or topic_province, record.get("body_id") or "", ""


def event_row_of(
    name: str,
    record: dict[str, Any],
    position: Position,
    topic_province: str,
    ingested_at: int,
    pii_key: bytes,
) -> Row:
    """The ``events`` row (times in epoch seconds) of the event whose Avro record this is."""
    province, body_id, body_kind = _where(name, record, topic_province)
    occurred_at: datetime = record["occurred_at"]
    day = jalali(occurred_at)
    intake = name in INTAKE_TYPES
    submitted = name == "RequestSubmitted"
    occurred_ms = int(occurred_at.timestamp() * 1000)
    return (
        record["event_id"],
        name,
        record["request_id"],
        province,
        body_id,
        body_kind,
        record["category"] if intake else "",
        record["channel"] if submitted else ("SECRETARIAT" if intake else ""),
        record["priority"] if intake else "",
        requester_hash(record["requester"]["national_id"], pii_key) if submitted else "",
        int(occurred_at.timestamp()),
        occurred_ms,
        int(record["recorded_at"].timestamp()),
        ingested_at,
        day.year,
        day.month,
        day.week,
        position.topic,
        position.partition,
        position.offset,
        payload_of(name, record),
    )


def sla_row_of(name: str, record: dict[str, Any], ingested_at: int) -> Row | None:
    """The ``sla_events`` row (times in epoch seconds) of an SLA fact's record; None otherwise."""
    if name not in SLA_EVENT_TYPES:
        return None
    occurred_at: datetime = record["occurred_at"]
    day = jalali(occurred_at)
    escalated = name == "RequestEscalated"
    due_at = occurred_at if escalated else record["due_at"]
    return (
        record["event_id"],
        name,
        record["request_id"],
        record["clock"],
        record["cycle"],
        record["threshold_percent"] if name == "SlaWarning" else 0,
        record["level"] if escalated else "",
        int(due_at.timestamp()),
        record["body_id"],
        record["province"],
        record["policy_id"],
        record["policy_version"],
        int(occurred_at.timestamp()),
        int(occurred_at.timestamp() * 1000),
        ingested_at,
        day.year,
        day.month,
        day.week,
    )


def transpose(rows: list[Row], width: int) -> list[list[Any]]:
    """Rows as columns (for columnar inserts); ``width`` empty columns for no rows."""
    if not rows:
        return [[] for _ in range(width)]
    return [list(column) for column in zip(*rows, strict=True)]
