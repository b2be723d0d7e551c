"""The SLA timer's queue kept across a clean stop, so that a restart need not work it out again.

The queue (each open request's next due instant) and the overdue requests are worked out from
every stored state at each recovery: with a million open requests that is most of a restart.
A worker with a persistent store writes them to a file when it stops cleanly, with the changelog
offset its store was up to on each partition. The next start uses a partition's part only if
the store is at that same offset after its recovery — nothing was written since, by this worker
or another — and works the other partitions out from their states. The file is read once and
removed, so it never outlives the states it describes.

The queue is a hint of when to look at a request: what falls due is always worked out from its
stored state, so an entry can be early but never late.
"""

from __future__ import annotations

import logging
import marshal
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

log = logging.getLogger("samt124.worker")
VERSION = 1
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)


def to_us(instant: datetime) -> int:
    return (instant - EPOCH) // MICROSECOND


def from_us(us: int) -> datetime:
    return EPOCH + timedelta(microseconds=us)


@dataclass(frozen=True)
class PartitionTimers:
    """One partition's timers as of changelog ``offset`` (-1: nothing on it yet)."""

    offset: int
    due: list[tuple[str, datetime]]
    overdue: list[tuple[str, int, datetime]]  # request id, resolution cycle, its deadline


def write(path: Path, partitions: dict[int, PartitionTimers]) -> None:
    """Write the timers in one step (a reader never sees half of the file)."""
    data = {
        "version": VERSION,
        "partitions": {
            partition: (
                timers.offset,
                [(request_id, to_us(due)) for request_id, due in timers.due],
                [(request_id, cycle, to_us(due)) for request_id, cycle, due in timers.overdue],
            )
            for partition, timers in partitions.items()
        },
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".tmp")
    with partial.open("wb") as file:
        marshal.dump(data, file)
        file.flush()
        os.fsync(file.fileno())
    partial.replace(path)


def take(path: Path) -> dict[int, PartitionTimers]:
    """The timers written at the last clean stop, and the file removed; none if there is none
    or it cannot be read (the queue is then worked out from the states)."""
    try:
        with path.open("rb") as file:
            data = marshal.load(file)
    except FileNotFoundError:
        return {}
    except (OSError, EOFError, ValueError, TypeError) as error:
        log.warning("SLA timer: cannot read %s (%s); working the queue out again", path, error)
        data = None
    path.unlink(missing_ok=True)
    if not isinstance(data, dict) or data.get("version") != VERSION:
        return {}
    try:
        return {
            int(partition): PartitionTimers(
                int(offset),
                [(str(request_id), from_us(us)) for request_id, us in due],
                [(str(request_id), int(cycle), from_us(us)) for request_id, cycle, us in overdue],
            )
            for partition, (offset, due, overdue) in data["partitions"].items()
        }
    except (KeyError, TypeError, ValueError) as error:
        log.warning("SLA timer: %s is not as expected (%s); working it out again", path, error)
        return {}
