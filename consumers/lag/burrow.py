"""Burrow-style health of a consumer group, judged over a sliding window of lag samples.

Pure: samples in, a status out. A sample is what one reading of one partition saw: the
group's committed offset, the partition's log-end offset, and whether a live member of the
group owns the partition. Kafka does not say when an offset was committed, so the member
stands in for Burrow's commit timestamps: a partition someone owns is being committed (the
offset it commits may not move: STALL); a partition nobody owns gets no commits (STOP).

Per partition, in this order:

- ERR: the latest reading failed;
- REWIND: the committed offset went backwards within the window;
- OK: lag was zero at some point in the window, or the window is not filled yet;
- STOP: lag above zero throughout, the offset did not move, and nobody owns the partition;
- STALL: lag above zero throughout, the offset did not move, and a member owns the partition;
- WARN: the offset moves but lag never shrank and ended higher than it began;
- OK otherwise (committing, keeping up or catching up).

A group is as bad as its worst partition.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass
from enum import IntEnum
from itertools import pairwise


class Status(IntEnum):
    """Ordered by severity, so the worst of several is their maximum."""

    OK = 0
    WARN = 1
    REWIND = 2
    STALL = 3
    STOP = 4
    ERR = 5

    @property
    def unhealthy(self) -> bool:
        """STALL, STOP and ERR need an operator; WARN and REWIND are worth a look."""
        return self >= Status.STALL


@dataclass(frozen=True)
class Sample:
    """One reading of one partition of one group, taken at ``at`` (seconds since the epoch)."""

    at: float
    committed: int | None  # None: the group has no committed offset here
    log_end: int | None  # None: not read
    owned: bool = True  # a live member of the group is assigned the partition
    error: str | None = None  # why the reading failed

    @property
    def lag(self) -> int | None:
        if self.committed is None or self.log_end is None:
            return None
        return max(self.log_end - self.committed, 0)


def in_window(samples: Sequence[Sample], window: float) -> tuple[Sample, ...]:
    """The samples that make up the window ending at the latest one.

    The window starts at the latest sample taken at or before ``latest.at - window``, so a
    filled window always spans at least ``window`` seconds; older samples are dropped.
    """
    if not samples:
        return ()
    ordered = sorted(samples, key=lambda sample: sample.at)
    start_before = ordered[-1].at - window
    first = 0
    for index, sample in enumerate(ordered):
        if sample.at <= start_before:
            first = index
    return tuple(ordered[first:])


def filled(samples: Sequence[Sample], window: float) -> bool:
    """True when the samples span the whole window."""
    kept = in_window(samples, window)
    return bool(kept) and kept[-1].at - kept[0].at >= window


def evaluate(samples: Sequence[Sample], window: float) -> Status:
    """The status of one partition over the window ending at its latest sample."""
    kept = in_window(samples, window)
    if not kept or kept[-1].error is not None:
        return Status.ERR
    readable = [sample for sample in kept if sample.error is None and sample.lag is not None]
    if not readable:
        return Status.OK  # nothing committed yet: nothing to judge
    offsets = [sample.committed for sample in readable if sample.committed is not None]
    if any(later < earlier for earlier, later in pairwise(offsets)):
        return Status.REWIND
    lags = [sample.lag or 0 for sample in readable]
    if min(lags) == 0 or not filled(kept, window):
        return Status.OK
    if offsets[0] == offsets[-1]:
        return Status.STALL if readable[-1].owned else Status.STOP
    growing = all(later >= earlier for earlier, later in pairwise(lags)) and lags[-1] > lags[0]
    return Status.WARN if growing else Status.OK


def worst(statuses: Iterable[Status]) -> Status:
    """A group's status: its worst partition's (OK for a group with no partitions)."""
    return max(statuses, default=Status.OK)


class History:
    """Samples per key (e.g. group, topic, partition), trimmed to the window as they arrive."""

    def __init__(self, window: float) -> None:
        if window <= 0:
            raise ValueError("the window must be longer than zero seconds")
        self.window = window
        self._samples: dict[Hashable, tuple[Sample, ...]] = {}

    def record(self, key: Hashable, sample: Sample) -> None:
        self._samples[key] = in_window([*self._samples.get(key, ()), sample], self.window)

    def retain(self, keys: Iterable[Hashable]) -> None:
        """Forget keys that are gone (a partition no longer in the group)."""
        wanted = set(keys)
        self._samples = {key: value for key, value in self._samples.items() if key in wanted}

    def status(self, key: Hashable) -> Status:
        return evaluate(self._samples.get(key, ()), self.window)

    def filled(self, key: Hashable) -> bool:
        return filled(self._samples.get(key, ()), self.window)
