"""Consumer lag, read from Kafka: in messages, in seconds, and judged over a window.

:class:`LagReader` does the Kafka I/O. Per group it reads the committed offsets
(OffsetFetch) and the members with their assignments (DescribeGroups) through the admin
client, and the log-end offsets (ListOffsets) through a consumer that joins no group.
Lag in seconds is the age of the oldest unconsumed message: now minus the timestamp of the
message at the committed offset, fetched alone by assign and seek (0 when the lag is 0);
timestamps are cached per offset, so a stuck partition costs one fetch, not one per sample.

:class:`Monitor` samples the groups and hands each partition's samples to
:mod:`consumers.lag.burrow`, which says OK, WARN, REWIND, STALL, STOP or ERR.

Every client is built from ``settings.kafka_client_options()``, so SASL and TLS apply.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from consumers.lag.burrow import History, Sample, Status, worst
from samt124.settings import Settings

CLIENT_ID = "samt124-lag"
TIMESTAMP_FETCH_SECONDS = 5.0
PartitionKey = tuple[str, str, int]  # group, topic, partition
MessageKey = tuple[str, int, int]  # topic, partition, offset


@dataclass(frozen=True)
class Member:
    """A live member of a group, in kafka-consumer-groups' terms."""

    consumer_id: str
    host: str
    client_id: str


@dataclass(frozen=True)
class PartitionLag:
    """One partition as one group sees it at one moment."""

    topic: str
    partition: int
    committed: int | None  # None: the group has not committed here yet
    log_end: int | None  # None: could not be read (see ``error``)
    lag_seconds: float | None  # None: unknown (no commit, or the message could not be read)
    member: Member | None  # who owns the partition; None when nobody does
    error: str | None = None

    @property
    def lag(self) -> int | None:
        if self.committed is None or self.log_end is None:
            return None
        return max(self.log_end - self.committed, 0)


@dataclass(frozen=True)
class GroupLag:
    """One reading of one group."""

    group: str
    state: str  # Stable, Empty, PreparingRebalance, ... as the coordinator says
    at: float  # when it was read, seconds since the epoch
    partitions: tuple[PartitionLag, ...]
    error: str | None = None  # the group itself could not be read


@dataclass(frozen=True)
class PartitionReport:
    lag: PartitionLag
    status: Status


@dataclass(frozen=True)
class GroupReport:
    """A reading with each partition's status over the window; the group is its worst."""

    reading: GroupLag
    partitions: tuple[PartitionReport, ...]
    status: Status
    filled: bool  # every partition's window spans the whole window

    @property
    def group(self) -> str:
        return self.reading.group

    @property
    def sum_lag(self) -> int:
        return sum(report.lag.lag or 0 for report in self.partitions)

    @property
    def max_lag(self) -> int:
        return max((report.lag.lag or 0 for report in self.partitions), default=0)

    @property
    def max_lag_seconds(self) -> float:
        return max((report.lag.lag_seconds or 0.0 for report in self.partitions), default=0.0)


@dataclass(frozen=True)
class _Offsets:
    """What the admin client and the consumer said about one group, before timestamps."""

    group: str
    state: str
    committed: dict[tuple[str, int], int]
    owners: dict[tuple[str, int], Member]
    log_end: dict[tuple[str, int], int]
    error: str | None = None
    partition_error: str | None = None


class LagReader:
    """Reads groups' offsets from Kafka; ``close()`` it (or use it as a context manager)."""

    def __init__(self, settings: Settings, *, timeout_ms: int = 10_000) -> None:
        from kafka import KafkaAdminClient, KafkaConsumer

        options = settings.kafka_client_options()
        self._admin = KafkaAdminClient(
            **options, client_id=CLIENT_ID, request_timeout_ms=timeout_ms
        )
        self._consumer = KafkaConsumer(
            **options,
            client_id=CLIENT_ID,
            group_id=None,
            enable_auto_commit=False,
            request_timeout_ms=timeout_ms + 1000,
        )
        self._timeout_ms = timeout_ms
        self._timestamps: dict[MessageKey, int] = {}

    def __enter__(self) -> LagReader:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self._consumer.close()
        self._admin.close()

    def groups(self, prefix: str) -> list[str]:
        """The consumer groups whose names start with ``prefix``."""
        return sorted(
            {
                str(group["group_id"])
                for group in self._admin.list_groups()
                if str(group["group_id"]).startswith(prefix)
            }
        )

    def read(self, groups: Sequence[str]) -> list[GroupLag]:
        """Read every group once; a group or partition that cannot be read carries its error."""
        offsets = [self._offsets(group) for group in groups]
        unconsumed = {
            (topic, partition, committed)
            for group in offsets
            for (topic, partition), committed in group.committed.items()
            if group.log_end.get((topic, partition), committed) > committed
        }
        stamps = self._message_timestamps(unconsumed)
        at = time.time()
        return [_reading(group, stamps, at) for group in offsets]

    def _offsets(self, group: str) -> _Offsets:
        from kafka.errors import KafkaError

        try:
            described = self._admin.describe_groups([group])[group]
            if described.get("error"):
                state = str(described.get("group_state") or "Unknown")
                found = state != "Dead"
                error = str(described["error"]) if found else f"group {group} does not exist"
                return _Offsets(group, state, {}, {}, {}, error=error)
            committed = {
                (tp.topic, tp.partition): int(meta.offset)
                for tp, meta in self._admin.list_group_offsets(group).get(group, {}).items()
                if meta.offset >= 0
            }
        except KafkaError as error:
            return _Offsets(group, "Unknown", {}, {}, {}, error=str(error))
        owners = _owners(described.get("members") or [])
        partitions = sorted(set(committed) | set(owners))
        try:
            log_end = self._log_end(partitions)
        except KafkaError as error:
            return _Offsets(
                group, described["group_state"], committed, owners, {}, partition_error=str(error)
            )
        return _Offsets(group, str(described["group_state"]), committed, owners, log_end)

    def _log_end(self, partitions: Iterable[tuple[str, int]]) -> dict[tuple[str, int], int]:
        from kafka import TopicPartition

        wanted = [TopicPartition(topic, partition) for topic, partition in partitions]
        if not wanted:
            return {}
        try:
            ends = self._consumer.end_offsets(wanted, timeout_ms=self._timeout_ms)
        except KeyError:
            # kafka-python leaves out a partition whose leader its metadata does not know yet
            # (a topic created since the last refresh, such as a new worker's changelog):
            # refresh all metadata, then ask once more
            self._consumer.topics()
            ends = self._consumer.end_offsets(wanted, timeout_ms=self._timeout_ms)
        return {(tp.topic, tp.partition): int(offset) for tp, offset in ends.items()}

    def _message_timestamps(self, wanted: set[MessageKey]) -> dict[MessageKey, int]:
        """The timestamp (ms) of the message at each (topic, partition, offset)."""
        from kafka import TopicPartition
        from kafka.errors import KafkaError

        self._timestamps = {key: value for key, value in self._timestamps.items() if key in wanted}
        missing = {
            TopicPartition(topic, partition): offset
            for topic, partition, offset in wanted
            if (topic, partition, offset) not in self._timestamps
        }
        if not missing:
            return self._timestamps
        try:
            self._consumer.assign(list(missing))
            for tp, offset in missing.items():
                self._consumer.seek(tp, offset)
            deadline = time.monotonic() + TIMESTAMP_FETCH_SECONDS
            while missing and time.monotonic() < deadline:
                batches: dict[Any, list[Any]] = self._consumer.poll(timeout_ms=200)
                for tp, records in batches.items():
                    if tp in missing and records:
                        key = (tp.topic, tp.partition, missing.pop(tp))
                        self._timestamps[key] = int(records[0].timestamp)
                        self._consumer.pause(tp)
        except KafkaError:
            pass  # the lag in seconds stays unknown for what could not be fetched
        finally:
            self._consumer.assign([])
        return self._timestamps


def _owners(members: Iterable[dict[str, Any]]) -> dict[tuple[str, int], Member]:
    owners: dict[tuple[str, int], Member] = {}
    for member in members:
        assignment = member.get("member_assignment")
        if not isinstance(assignment, dict):
            continue  # rebalancing, or not a consumer-protocol member
        who = Member(
            consumer_id=str(member["member_id"]),
            host=str(member["client_host"]),
            client_id=str(member["client_id"]),
        )
        for topic in assignment.get("assigned_partitions", []):
            for partition in topic["partitions"]:
                owners[(str(topic["topic"]), int(partition))] = who
    return owners


def _reading(offsets: _Offsets, stamps: dict[MessageKey, int], at: float) -> GroupLag:
    partitions = []
    for topic, partition in sorted(set(offsets.committed) | set(offsets.owners)):
        committed = offsets.committed.get((topic, partition))
        log_end = offsets.log_end.get((topic, partition))
        lag_seconds: float | None = None
        if committed is not None and log_end is not None:
            if log_end <= committed:
                lag_seconds = 0.0
            elif (topic, partition, committed) in stamps:
                stamp = stamps[(topic, partition, committed)] / 1000
                lag_seconds = max(at - stamp, 0.0)
        partitions.append(
            PartitionLag(
                topic=topic,
                partition=partition,
                committed=committed,
                log_end=log_end,
                lag_seconds=lag_seconds,
                member=offsets.owners.get((topic, partition)),
                error=offsets.partition_error,
            )
        )
    return GroupLag(offsets.group, offsets.state, at, tuple(partitions), offsets.error)


class Monitor:
    """Samples the pipeline's groups and judges every partition over a sliding window."""

    def __init__(
        self, reader: LagReader, *, window: float, prefix: str, group: str | None = None
    ) -> None:
        self._reader = reader
        self._prefix = prefix
        self._group = group
        self.history = History(window)

    def groups(self) -> list[str]:
        return [self._group] if self._group else self._reader.groups(self._prefix)

    def sample(self) -> list[GroupReport]:
        readings = self._reader.read(self.groups())
        keys: list[PartitionKey] = []
        for reading in readings:
            for lag in reading.partitions:
                key = (reading.group, lag.topic, lag.partition)
                keys.append(key)
                self.history.record(
                    key,
                    Sample(
                        at=reading.at,
                        committed=lag.committed,
                        log_end=lag.log_end,
                        owned=lag.member is not None,
                        error=lag.error,
                    ),
                )
        self.history.retain(keys)
        return [self._report(reading) for reading in readings]

    def _report(self, reading: GroupLag) -> GroupReport:
        partitions = tuple(
            PartitionReport(lag, self.history.status((reading.group, lag.topic, lag.partition)))
            for lag in reading.partitions
        )
        status = worst(report.status for report in partitions)
        if reading.error is not None:
            status = Status.ERR
        filled = all(
            self.history.filled((reading.group, lag.topic, lag.partition))
            for lag in reading.partitions
        )
        return GroupReport(reading, partitions, status, filled)
