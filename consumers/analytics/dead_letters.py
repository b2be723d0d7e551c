"""Dead letters in ClickHouse (``dead_letters``, loaded by the sink from ``samt124.dlq``).

One row per dead-letter message, read through ``FINAL`` so that a batch the sink stored twice
counts once. The report counts them by the kind of their reason
(:data:`samt124.contract.dead_letters.KINDS`); :func:`listing` and :func:`one` serve
``samt124 dlq list`` and ``show``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from consumers.clickhouse.dead_letters import DEAD_LETTER_COLUMNS
from consumers.clickhouse.engine import Engine, quote
from samt124.contract.dead_letters import KINDS

Table = tuple[list[str], list[tuple[object, ...]]]
Label = Callable[[datetime], str]


def by_reason_sql(db: str, since: datetime | None = None, until: datetime | None = None) -> str:
    """Dead letters per kind of reason, with the first and last time and the latest reason.

    Only those dead-lettered by ``until`` (a report's ``--as-of``) count.
    """
    conditions = []
    if since:
        conditions.append(f"occurred_ms >= {int(since.timestamp()) * 1000}")
    if until:
        conditions.append(f"occurred_ms <= {int(until.timestamp() * 1000)}")
    where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
    return f"""
SELECT
    reason_kind,
    count() AS dead_letters,
    min(toUnixTimestamp(dead_at)) AS first_at,
    max(toUnixTimestamp(dead_at)) AS last_at,
    argMax(reason, toUnixTimestamp(dead_at)) AS latest_reason
FROM (
    SELECT reason_kind, reason, dead_at, toUInt64(toUnixTimestamp(dead_at)) * 1000 AS occurred_ms
    FROM {db}.dead_letters FINAL
)
{where}
GROUP BY reason_kind"""


def by_reason(
    engine: Engine, since: datetime | None, label: Label, until: datetime | None = None
) -> Table:
    """``samt124 report dead-letters``: one line per kind (in :data:`KINDS` order) and a total."""
    _, rows = engine.query(by_reason_sql(engine.database, since, until))
    order = {kind: number for number, kind in enumerate(KINDS)}
    rows.sort(key=lambda row: (order.get(str(row[0]), len(KINDS)), str(row[0])))
    out: list[tuple[object, ...]] = [
        (kind, int(count), _at(first, label), _at(last, label), reason)
        for kind, count, first, last, reason in rows
    ]
    total = sum(int(row[1]) for row in rows)
    if rows:
        first = min(int(row[2]) for row in rows)
        last = max(int(row[3]) for row in rows)
        out.append(("total", total, _at(first, label), _at(last, label), ""))
    return ["reason_kind", "dead_letters", "first", "last", "latest_reason"], out


def _at(epoch: Any, label: Label) -> str:
    return label(datetime.fromtimestamp(int(epoch), UTC))


@dataclass(frozen=True)
class Filters:
    """What ``samt124 dlq list`` narrows to (every field optional)."""

    kind: str | None = None
    reason: str | None = None  # a part of the reason's text
    request_id: str | None = None
    source_topic: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int = 50


LIST_COLUMNS = (
    "partition",
    "offset",
    "dead_at",
    "reason_kind",
    "event_type",
    "request_id",
    "source",
    "reason",
)


def listing_sql(db: str, topic: str, filters: Filters) -> str:
    clauses = [f"topic = {quote(topic)}"]
    if filters.kind:
        clauses.append(f"reason_kind = {quote(filters.kind)}")
    if filters.reason:
        clauses.append(f"position(reason, {quote(filters.reason)}) > 0")
    if filters.request_id:
        clauses.append(f"request_id = {quote(filters.request_id)}")
    if filters.source_topic:
        clauses.append(f"source_topic = {quote(filters.source_topic)}")
    if filters.since:
        clauses.append(f"toUnixTimestamp(dead_at) >= {int(filters.since.timestamp())}")
    if filters.until:
        clauses.append(f"toUnixTimestamp(dead_at) < {int(filters.until.timestamp())}")
    return f"""
SELECT
    partition, offset, toUnixTimestamp(dead_at) AS dead_at, reason_kind, event_type, request_id,
    concat(source_topic, '[', toString(source_partition), ']@', toString(source_offset)) AS source,
    reason
FROM {db}.dead_letters FINAL
WHERE {" AND ".join(clauses)}
ORDER BY dead_at DESC, partition, offset
LIMIT {int(filters.limit)}"""


def listing(engine: Engine, topic: str, filters: Filters, label: Label) -> Table:
    """The newest dead letters first, as ``samt124 dlq list`` prints them."""
    _, rows = engine.query(listing_sql(engine.database, topic, filters))
    out: list[tuple[object, ...]] = [
        (int(p), int(o), _at(at, label), kind, etype, rid, source, reason)
        for p, o, at, kind, etype, rid, source, reason in rows
    ]
    return list(LIST_COLUMNS), out


STORED_COLUMNS = tuple(  # dead_at is read as an epoch; ingested_at is the sink's own
    column for column in DEAD_LETTER_COLUMNS if column not in ("dead_at", "ingested_at")
)


@dataclass(frozen=True)
class Stored:
    """One dead letter as the sink stored it."""

    topic: str
    partition: int
    offset: int
    reason: str
    reason_kind: str
    error_type: str
    source_topic: str
    source_partition: int
    source_offset: int
    event_type: str
    event_id: str
    request_id: str
    key_hex: str
    original_hex: str
    headers: str
    dead_at: datetime

    @property
    def original(self) -> bytes:
        return bytes.fromhex(self.original_hex)

    @property
    def key(self) -> bytes | None:
        return bytes.fromhex(self.key_hex) if self.key_hex else None


def one(engine: Engine, topic: str, partition: int, offset: int) -> Stored | None:
    """The dead letter at ``topic[partition]@offset``, or ``None`` when none is stored there."""
    sql = f"""
SELECT {", ".join(STORED_COLUMNS)}, toUnixTimestamp(dead_at) AS dead_epoch
FROM {engine.database}.dead_letters FINAL
WHERE topic = {quote(topic)} AND partition = {int(partition)} AND offset = {int(offset)}
LIMIT 1"""
    _, rows = engine.query(sql)
    if not rows:
        return None
    *values, epoch = rows[0]
    fields = dict(zip(STORED_COLUMNS, values, strict=True))
    for name in ("partition", "offset", "source_partition", "source_offset"):
        fields[name] = int(fields[name])
    return Stored(**fields, dead_at=datetime.fromtimestamp(int(epoch), UTC))
