"""Lag for people and for programs: kafka-consumer-groups' table plus status, or JSON."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from consumers.lag.reader import GroupReport, PartitionReport

COLUMNS = (
    "GROUP",
    "TOPIC",
    "PARTITION",
    "CURRENT-OFFSET",
    "LOG-END-OFFSET",
    "LAG",
    "LAG-SECONDS",
    "STATUS",
    "CONSUMER-ID",
    "HOST",
    "CLIENT-ID",
)
MISSING = "-"


def _text(value: object) -> str:
    if value is None:
        return MISSING
    if isinstance(value, float):
        return f"{value:.1f}"
    return str(value)


def _row(group: str, report: PartitionReport) -> tuple[str, ...]:
    lag, member = report.lag, report.lag.member
    return tuple(
        _text(value)
        for value in (
            group,
            lag.topic,
            lag.partition,
            lag.committed,
            lag.log_end,
            lag.lag,
            lag.lag_seconds,
            report.status.name,
            member.consumer_id if member else None,
            member.host if member else None,
            member.client_id if member else None,
        )
    )


def summary(report: GroupReport) -> str:
    """One line per group: its status and how far behind it is."""
    reading = report.reading
    members = {lag.lag.member for lag in report.partitions if lag.lag.member is not None}
    text = (
        f"GROUP {report.group}  STATUS {report.status.name}  state {reading.state}  "
        f"members {len(members)}  partitions {len(report.partitions)}  "
        f"sum lag {report.sum_lag}  max lag {report.max_lag}  "
        f"max lag seconds {report.max_lag_seconds:.1f}"
    )
    if not report.filled:
        text += "  (window not filled yet)"
    if reading.error:
        text += f"  error: {reading.error}"
    return text


def table(reports: Sequence[GroupReport]) -> str:
    """The partitions of every group, columns aligned, then one summary line per group."""
    rows = [COLUMNS] + [
        _row(report.group, partition) for report in reports for partition in report.partitions
    ]
    widths = [max(len(row[column]) for row in rows) for column in range(len(COLUMNS))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
    return "\n".join([*lines, "", *(summary(report) for report in reports)])


def as_json(reports: Sequence[GroupReport], window: float, *, indent: int | None = 2) -> str:
    """One JSON document; ``indent=None`` keeps it on one line (a line per sample when watching)."""
    document = {"window_seconds": window, "groups": [_group(report) for report in reports]}
    return json.dumps(document, indent=indent)


def _group(report: GroupReport) -> dict[str, Any]:
    reading = report.reading
    return {
        "group": report.group,
        "status": report.status.name,
        "state": reading.state,
        "sampled_at": reading.at,
        "window_filled": report.filled,
        "sum_lag": report.sum_lag,
        "max_lag": report.max_lag,
        "max_lag_seconds": report.max_lag_seconds,
        "error": reading.error,
        "partitions": [_partition(partition) for partition in report.partitions],
    }


def _partition(report: PartitionReport) -> dict[str, Any]:
    lag, member = report.lag, report.lag.member
    return {
        "topic": lag.topic,
        "partition": lag.partition,
        "current_offset": lag.committed,
        "log_end_offset": lag.log_end,
        "lag": lag.lag,
        "lag_seconds": lag.lag_seconds,
        "status": report.status.name,
        "consumer_id": member.consumer_id if member else None,
        "host": member.host if member else None,
        "client_id": member.client_id if member else None,
        "error": lag.error,
    }


LAG_SAMPLE_COLUMNS = (
    "group",
    "topic",
    "partition",
    "committed",
    "end",
    "lag",
    "lag_seconds",
    "status",
    "sampled_at",
)


def lag_sample_rows(reports: Sequence[GroupReport]) -> list[tuple[Any, ...]]:
    """Rows for ClickHouse's ``lag_samples``: the partitions whose offsets were all read."""
    rows: list[tuple[Any, ...]] = []
    for report in reports:
        sampled_at = datetime.fromtimestamp(report.reading.at, tz=UTC)
        for partition in report.partitions:
            lag = partition.lag
            if lag.committed is None or lag.log_end is None or lag.lag_seconds is None:
                continue
            rows.append(
                (
                    report.group,
                    lag.topic,
                    lag.partition,
                    lag.committed,
                    lag.log_end,
                    lag.lag,
                    lag.lag_seconds,
                    partition.status.name,
                    sampled_at,
                )
            )
    return rows
