"""Dead letters of ``samt124.dlq`` as ``dead_letters`` rows: pure, no I/O.

Each row keeps the original message's key and bytes exactly (hex), its headers, the worker's
reason, error type and the original's place, and, when the original decodes, its event type,
id and request id (an invalid event decodes; bytes that are no samt124 event do not).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime

from consumers.sink.rows import Position, Row
from samt124.contract import dead_letters as dl
from samt124.contract.wire import DecodeError, decode
from samt124.domain.events import event_type

Headers = Sequence[tuple[str, bytes]]


def header_texts(headers: Headers) -> dict[str, str]:
    """Headers as texts (the last of a repeated name wins; undecodable bytes replaced)."""
    return {name: (value or b"").decode("utf-8", "replace") for name, value in headers}


def _number(text: str | None) -> int:
    try:
        return int(text) if text is not None else -1
    except ValueError:
        return -1


def _time(text: str | None, fallback: datetime) -> datetime:
    if text:
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            return fallback
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return fallback


def dead_letter_row(
    position: Position,
    key: bytes | None,
    value: bytes,
    headers: Headers,
    record_time: datetime,
    ingested_at: datetime,
) -> Row:
    """The ``dead_letters`` row of a message read at ``position`` (:data:`DEAD_LETTER_COLUMNS`)."""
    texts = header_texts(headers)
    reason = texts.get(dl.REASON, "")
    error_type = texts.get(dl.ERROR, "")
    kind, event_id, request_id = "", "", ""
    try:
        event = decode(value)
    except DecodeError:
        pass
    else:
        kind, event_id, request_id = event_type(event), event.event_id, event.request_id
    return (
        position.topic,
        position.partition,
        position.offset,
        reason,
        dl.reason_kind(reason, error_type),
        error_type,
        texts.get(dl.SOURCE_TOPIC, ""),
        _number(texts.get(dl.SOURCE_PARTITION)),
        _number(texts.get(dl.SOURCE_OFFSET)),
        _time(texts.get(dl.AT), record_time),
        kind,
        event_id,
        request_id,
        (key or b"").hex(),
        value.hex(),
        json.dumps(texts, ensure_ascii=False, sort_keys=True),
        ingested_at,
    )
