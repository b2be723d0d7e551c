"""The columns of the ``dead_letters`` table (migration 004), in its order: the sink writes
them and the dead-letter readers read them."""

from __future__ import annotations

DEAD_LETTER_COLUMNS = (
    "topic",
    "partition",
    "offset",
    "reason",
    "reason_kind",
    "error_type",
    "source_topic",
    "source_partition",
    "source_offset",
    "dead_at",
    "event_type",
    "event_id",
    "request_id",
    "key_hex",
    "original_hex",
    "headers",
    "ingested_at",
)
