"""Events and their Kafka coordinates as ClickHouse rows: pure, no I/O.

Personal data never reaches ClickHouse in clear: the requester's national id becomes a keyed
hash (HMAC-SHA256 with the configured key; empty when no key is configured, since an unkeyed
hash of a 10- or 11-digit id is trivially reversed), and names, phone numbers, e-mail
addresses and the free-text fields (subject, body, messages, notes) are not stored at all.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from samt124.domain.events import (
    Event,
    LetterRegistered,
    RequestEscalated,
    RequestReferred,
    RequestSubmitted,
    RequestTransferred,
    SlaBreached,
    SlaDeadlinesSet,
    SlaWarning,
    event_type,
    to_record,
)
from samt124.domain.tehran_time import jalali

# Not stored: personal data and free text that may contain it.
PRIVATE_FIELDS = frozenset(
    {"requester", "subject", "body", "message", "resolution_note", "note", "assignee"}
)

EVENT_COLUMNS = (
    "event_id",
    "event_type",
    "request_id",
    "province",
    "body_id",
    "body_kind",
    "category",
    "channel",
    "priority",
    "requester_hash",
    "occurred_at",
    "occurred_ms",
    "recorded_at",
    "ingested_at",
    "jalali_year",
    "jalali_month",
    "jalali_week",
    "topic",
    "partition",
    "offset",
    "payload",
)
SLA_COLUMNS = (
    "event_id",
    "event_type",
    "request_id",
    "clock",
    "cycle",
    "threshold_percent",
    "level",
    "due_at",
    "body_id",
    "province",
    "policy_id",
    "policy_version",
    "occurred_at",
    "occurred_ms",
    "ingested_at",
    "jalali_year",
    "jalali_month",
    "jalali_week",
)
DEADLINE_COLUMNS = (
    "event_id",
    "request_id",
    "clock",
    "cycle",
    "policy_id",
    "target_us",
    "elapsed_us",
    "running",
    "running_since_ms",
    "stopped",
    "due_ms",
    "province",
    "body_id",
    "body_kind",
    "status",
    "policy_version",
    "occurred_at",
    "occurred_ms",
    "ingested_at",
    "topic",
    "partition",
    "offset",
)
ERROR_COLUMNS = ("topic", "partition", "offset", "reason", "raw_hex", "ingested_at")

Row = tuple[Any, ...]
SlaEvent = SlaWarning | SlaBreached | RequestEscalated


@dataclass(frozen=True)
class Position:
    """Where a message was read: its topic, partition and offset."""

    topic: str
    partition: int
    offset: int


def requester_hash(national_id: str, key: bytes) -> str:
    """HMAC-SHA256 of the national id; empty when no key is configured."""
    if not key:
        return ""
    return hmac.new(key, national_id.encode(), hashlib.sha256).hexdigest()


def epoch_ms(t: datetime) -> int:
    return int(t.timestamp() * 1000)


def payload(event: Event) -> str:
    """The event's non-personal fields as JSON (times ISO 8601 in UTC)."""
    record = {k: _plain(v) for k, v in to_record(event).items() if k not in PRIVATE_FIELDS}
    return json.dumps(record, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def _where(event: Event, topic_province: str) -> tuple[str, str, str]:
    """Province, body id and body kind the event concerns."""
    if isinstance(event, RequestReferred):
        return event.province, event.body_id, event.body_kind
    if isinstance(event, RequestTransferred):
        return event.to_province, event.to_body_id, event.to_body_kind
    province = getattr(event, "province", None) or topic_province
    return province, getattr(event, "body_id", None) or "", ""


def event_row(
    event: Event, position: Position, topic_province: str, ingested_at: datetime, pii_key: bytes
) -> Row:
    """The ``events`` row of ``event`` read at ``position`` (columns: :data:`EVENT_COLUMNS`)."""
    province, body_id, body_kind = _where(event, topic_province)
    intake = event if isinstance(event, RequestSubmitted | LetterRegistered) else None
    submitted = event if isinstance(event, RequestSubmitted) else None
    day = jalali(event.occurred_at)
    return (
        event.event_id,
        event_type(event),
        event.request_id,
        province,
        body_id,
        body_kind,
        intake.category if intake else "",
        submitted.channel if submitted else ("SECRETARIAT" if intake else ""),
        intake.priority if intake else "",
        requester_hash(submitted.requester.national_id, pii_key) if submitted else "",
        event.occurred_at,
        epoch_ms(event.occurred_at),
        event.recorded_at,
        ingested_at,
        day.year,
        day.month,
        day.week,
        position.topic,
        position.partition,
        position.offset,
        payload(event),
    )


def sla_row(event: SlaEvent, ingested_at: datetime) -> Row:
    """The ``sla_events`` row of an SLA fact (columns: :data:`SLA_COLUMNS`)."""
    day = jalali(event.occurred_at)
    due_at = event.occurred_at if isinstance(event, RequestEscalated) else event.due_at
    return (
        event.event_id,
        event_type(event),
        event.request_id,
        event.clock,
        event.cycle,
        event.threshold_percent if isinstance(event, SlaWarning) else 0,
        event.level if isinstance(event, RequestEscalated) else "",
        due_at,
        event.body_id,
        event.province,
        event.policy_id,
        event.policy_version,
        event.occurred_at,
        epoch_ms(event.occurred_at),
        ingested_at,
        day.year,
        day.month,
        day.week,
    )


_DEADLINE_CLOCKS = (
    ("FIRST_RESPONSE", "first_response"),
    ("RESOLUTION", "resolution"),
    ("OPERATIONAL", "operational"),
)


def deadline_rows(event: SlaDeadlinesSet, position: Position, ingested_at: datetime) -> list[Row]:
    """The ``sla_deadlines`` rows of a deadlines fact, one per clock the request has (columns:
    :data:`DEADLINE_COLUMNS`; instants in epoch milliseconds, 0 when there is none)."""
    rows: list[Row] = []
    for clock, prefix in _DEADLINE_CLOCKS:
        cycle = getattr(event, f"{prefix}_cycle")
        if not cycle:
            continue
        since: datetime | None = getattr(event, f"{prefix}_running_since")
        due: datetime | None = getattr(event, f"{prefix}_due_at")
        rows.append(
            (
                event.event_id,
                event.request_id,
                clock,
                cycle,
                getattr(event, f"{prefix}_policy_id"),
                getattr(event, f"{prefix}_target_us"),
                getattr(event, f"{prefix}_elapsed_us"),
                int(since is not None),
                epoch_ms(since) if since is not None else 0,
                int(bool(getattr(event, f"{prefix}_stopped"))),
                epoch_ms(due) if due is not None else 0,
                event.province,
                event.body_id,
                event.body_kind,
                event.status,
                event.policy_version,
                event.occurred_at,
                epoch_ms(event.occurred_at),
                ingested_at,
                position.topic,
                position.partition,
                position.offset,
            )
        )
    return rows


def error_row(position: Position, reason: str, raw: bytes, ingested_at: datetime) -> Row:
    """A ``sink_errors`` row for a message the sink could not decode."""
    return (position.topic, position.partition, position.offset, reason, raw.hex(), ingested_at)


def is_sla(event: Event) -> bool:
    return isinstance(event, SlaWarning | SlaBreached | RequestEscalated)
