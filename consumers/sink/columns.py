"""The sink's fast path: raw Avro records straight to ClickHouse rows, without event objects.

:mod:`consumers.sink.rows` says what each column holds, one event at a time
(:func:`~consumers.sink.rows.event_row`, :func:`~consumers.sink.rows.sla_row`). This module
computes the same rows from the record :meth:`~samt124.contract.wire.Codec.decode_raw` reads,
whose times are epoch milliseconds and dates days since 1970-01-01, without building the
event, its ``datetime`` objects or the record again, and gives times as epoch seconds (what a
``DateTime`` column stores; both engines take them as they are). ``payload`` is the very text
:func:`~consumers.sink.rows.payload` writes: the ISO 8601 texts of the times and dates are
formatted from the integers. ``tests/unit/test_sink_columns.py`` holds the two equal for every
event type. Pure: no I/O.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache, lru_cache
from typing import Any

from consumers.sink.rows import PRIVATE_FIELDS, Position, Row, requester_hash
from samt124.contract.wire import RawFields
from samt124.domain.events import EVENT_TYPES, SLA_EVENT_TYPES
from samt124.domain.tehran_time import jalali_at_ms

INTAKE_TYPES = frozenset({"RequestSubmitted", "LetterRegistered"})
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


def seconds(t: datetime) -> int:
    """Epoch seconds of an aware instant, as a ``DateTime`` column stores it."""
    return int(t.timestamp())


@lru_cache(maxsize=65_536)
def day_text(days: int) -> str:
    """``date.isoformat()`` of the day ``days`` after 1970-01-01."""
    return date.fromordinal(days + _EPOCH_ORDINAL).isoformat()


def iso_of_ms(ms: int) -> str:
    """``datetime.isoformat()`` of the aware UTC instant ``ms`` epoch milliseconds."""
    whole, milli = divmod(ms, 1000)
    days, second = divmod(whole, 86_400)
    hour, second = divmod(second, 3_600)
    minute, second = divmod(second, 60)
    if milli:
        return f"{day_text(days)}T{hour:02d}:{minute:02d}:{second:02d}.{milli:03d}000+00:00"
    return f"{day_text(days)}T{hour:02d}:{minute:02d}:{second:02d}+00:00"


@dataclass(frozen=True)
class _Payload:
    """How to write ``payload`` of one record type: its kept fields in sorted order, each with
    the formatter of its value (None: as it is)."""

    fields: tuple[tuple[str, Callable[[int], str] | None], ...]


@cache
def _payload_plan(name: str, raw: RawFields) -> _Payload:
    import dataclasses

    keep = {f.name for f in dataclasses.fields(EVENT_TYPES[name])} - PRIVATE_FIELDS
    keep &= set(raw.fields)
    millis, days = set(raw.millis), set(raw.days)
    return _Payload(
        tuple(
            (k, iso_of_ms if k in millis else day_text if k in days else None) for k in sorted(keep)
        )
    )


_dumps: Callable[[Any], str] = json.JSONEncoder(
    ensure_ascii=False, separators=(",", ":")
).encode  # the keys come sorted already


def payload_of(name: str, record: dict[str, Any], raw: RawFields) -> str:
    """:func:`consumers.sink.rows.payload` of the event whose raw Avro record this is."""
    kept: dict[str, Any] = {}
    for key, text in _payload_plan(name, raw).fields:
        value = record[key]
        kept[key] = value if text is None or value is None else text(value)
    return _dumps(kept)


def _where(name: str, record: dict[str, Any], topic_province: str) -> tuple[str, str, str]:
    if name == "RequestReferred":
        return record["province"], record["body_id"], record["body_kind"]
    if name == "RequestTransferred":
        return record["to_province"], record["to_body_id"], record["to_body_kind"]
    return record.get("province") or topic_province, record.get("body_id") or "", ""


def event_row_of(
    name: str,
    record: dict[str, Any],
    raw: RawFields,
    position: Position,
    topic_province: str,
    ingested_at: int,
    pii_key: bytes,
) -> Row:
    """The ``events`` row (times in epoch seconds) of the event whose raw Avro record this is
    (``raw``: its record type's raw fields)."""
    province, body_id, body_kind = _where(name, record, topic_province)
    occurred_ms: int = record["occurred_at"]
    day = jalali_at_ms(occurred_ms)
    if name in INTAKE_TYPES:
        category, priority = record["category"], record["priority"]
        if name == "RequestSubmitted":
            channel = record["channel"]
            requester = requester_hash(record["requester"]["national_id"], pii_key)
        else:
            channel, requester = "SECRETARIAT", ""
    else:
        category = channel = priority = requester = ""
    # int(ms / 1000) and int(ms / 1000 * 1000) are int(t.timestamp()) and
    # int(t.timestamp() * 1000) of the instant t: the same correctly rounded quotient
    return (
        record["event_id"],
        name,
        record["request_id"],
        province,
        body_id,
        body_kind,
        category,
        channel,
        priority,
        requester,
        int(occurred_ms / 1000),
        int(occurred_ms / 1000 * 1000),
        int(record["recorded_at"] / 1000),
        ingested_at,
        day.year,
        day.month,
        day.week,
        position.topic,
        position.partition,
        position.offset,
        payload_of(name, record, raw),
    )


def sla_row_of(name: str, record: dict[str, Any], ingested_at: int) -> Row | None:
    """The ``sla_events`` row (times in epoch seconds) of an SLA fact's raw record; None for
    any other record."""
    if name not in SLA_EVENT_TYPES:
        return None
    occurred_ms: int = record["occurred_at"]
    day = jalali_at_ms(occurred_ms)
    escalated = name == "RequestEscalated"
    due_ms: int = occurred_ms if escalated else record["due_at"]
    return (
        record["event_id"],
        name,
        record["request_id"],
        record["clock"],
        record["cycle"],
        record["threshold_percent"] if name == "SlaWarning" else 0,
        record["level"] if escalated else "",
        int(due_ms / 1000),
        record["body_id"],
        record["province"],
        record["policy_id"],
        record["policy_version"],
        int(occurred_ms / 1000),
        int(occurred_ms / 1000 * 1000),
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
