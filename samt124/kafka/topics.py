"""Topic names, the partition of a key, and how each topic is kept. One namespace (``samt124``
unless configured) prefixes every topic.

Every topic samt124 creates is described here, with its retention, compaction and replication:
:class:`TopicPlan` is what ``samt124 init`` creates and checks an existing cluster against."""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

_M = 0x5BD1E995  # murmur2's mixing constant
_SEED = 0x9747B28C  # the seed Kafka's clients use
_MASK = 0xFFFFFFFF


def murmur2(data: bytes) -> int:
    """MurmurHash2 of ``data`` as Kafka's Java client computes it (``Utils.murmur2``), as an
    unsigned 32-bit value: the same as kafka-python's ``murmur2``, with the key's 32-bit words
    read at once by :mod:`struct` instead of byte by byte."""
    length = len(data)
    h = _SEED ^ length
    whole = length & ~3
    for word in _words(length >> 2)(data):
        k = (word * _M) & _MASK
        h = ((h * _M) & _MASK) ^ (((k ^ (k >> 24)) * _M) & _MASK)
    extra = length - whole
    if extra:
        if extra >= 3:
            h ^= data[whole + 2] << 16
        if extra >= 2:
            h ^= data[whole + 1] << 8
        h = ((h ^ data[whole]) * _M) & _MASK
    h = ((h ^ (h >> 13)) * _M) & _MASK
    return h ^ (h >> 15)


@lru_cache(maxsize=256)
def _words(count: int) -> Callable[[bytes], tuple[int, ...]]:
    """Reads the first ``count`` little-endian 32-bit words of a key (one reader per length)."""
    return struct.Struct(f"<{count}I").unpack_from


def partition_of(key: bytes, partitions: int) -> int:
    """The partition Kafka's default partitioner gives ``key`` (murmur2, as in the Java client,
    kafka-python and aiokafka): where samt124 keeps everything about a request."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


@dataclass(frozen=True)
class Topics:
    namespace: str = "samt124"

    @property
    def intake(self) -> str:
        return f"{self.namespace}.intake"

    @property
    def sla(self) -> str:
        return f"{self.namespace}.sla"

    @property
    def dlq(self) -> str:
        return f"{self.namespace}.dlq"

    @property
    def province_prefix(self) -> str:
        return f"{self.namespace}.province."

    def province(self, code: str) -> str:
        """``samt124.province.IR-30`` for Alborz."""
        return f"{self.province_prefix}{code}"

    def provinces(self) -> list[str]:
        """The topics of all 31 provinces, in code order."""
        from samt124.domain.provinces import PROVINCES

        return [self.province(code) for code in sorted(PROVINCES)]

    def is_province(self, topic: str) -> bool:
        return topic.startswith(self.province_prefix)

    @property
    def worker_group(self) -> str:
        """The worker's consumer group and Faust application id."""
        return f"{self.namespace}-worker"

    def changelog(self, table: str) -> str:
        """A worker table's changelog, as Faust names it: ``<app id>-<table>-changelog``."""
        return f"{self.worker_group}-{table}-changelog"

    def changelogs(self) -> list[str]:
        """The changelogs of the worker's tables: request states, announced office closures."""
        return [self.changelog(table) for table in WORKER_TABLES]


WORKER_TABLES = ("requests", "closures")

# -------------------------------------------------------------- what each topic is kept as

FOREVER = -1
Role = Literal["intake", "province", "sla", "dlq", "changelog"]
ROLES: tuple[Role, ...] = ("intake", "province", "sla", "dlq", "changelog")
ROLE_TEXT: dict[Role, str] = {
    "intake": "the system of record: every request's events as published, kept forever",
    "province": "each province's events as routed, kept for SAMT124_PROVINCE_RETENTION_MS",
    "sla": "warnings, breaches and escalations, kept for SAMT124_SLA_RETENTION_MS",
    "dlq": "dead letters with their reason and original bytes, kept forever",
    "changelog": "the worker's table states, compacted: the latest state of each key",
}


@dataclass(frozen=True)
class TopicPlan:
    """How samt124 wants every topic it creates kept, on a cluster of a given size."""

    partitions: int
    replication_factor: int
    province_retention_ms: int
    sla_retention_ms: int

    @property
    def min_insync_replicas(self) -> int:
        """2 with three or more replicas (a write survives a lost broker and is on two
        others before it is acknowledged); otherwise every replica there is."""
        return 2 if self.replication_factor >= 3 else 1

    def configs(self, role: Role) -> dict[str, str]:
        """The topic-level settings samt124 sets and checks for a topic of ``role``."""
        isr = {"min.insync.replicas": str(self.min_insync_replicas)}
        if role == "changelog":
            return {"cleanup.policy": "compact", **isr}
        retention = {
            "intake": FOREVER,
            "dlq": FOREVER,
            "province": self.province_retention_ms,
            "sla": self.sla_retention_ms,
        }[role]
        return {
            "cleanup.policy": "delete",
            "retention.ms": str(retention),
            "retention.bytes": "-1",
            **isr,
        }


def replication_for(brokers: int, wanted: int | None) -> int:
    """``wanted`` when the operator set it, otherwise min(3, brokers)."""
    if wanted is not None:
        return wanted
    return max(1, min(3, brokers))


def role_of(topics: Topics, name: str) -> Role | None:
    """Which of samt124's topics ``name`` is (None: not one of them)."""
    if name == topics.intake:
        return "intake"
    if name == topics.sla:
        return "sla"
    if name == topics.dlq:
        return "dlq"
    if topics.is_province(name):
        return "province"
    if name in topics.changelogs():
        return "changelog"
    return None


@dataclass(frozen=True)
class Found:
    """What the cluster says about one topic."""

    name: str
    partitions: int
    replication_factor: int
    configs: dict[str, str]


@dataclass(frozen=True)
class Difference:
    """One way a topic on the cluster is not as samt124 wants it."""

    topic: str
    setting: str  # a topic config key, or "partitions" / "replication factor"
    found: str
    wanted: str

    @property
    def alterable(self) -> bool:
        """A topic config can be altered in place; partitions and replicas cannot here."""
        return self.setting not in ("partitions", "replication factor")

    def describe(self) -> str:
        return f"{self.topic}: {self.setting} is {self.found}, samt124 wants {self.wanted}"


def differences(plan: TopicPlan, topics: Topics, found: Found) -> list[Difference]:
    """How ``found`` differs from the plan (nothing for a topic that is not samt124's)."""
    role = role_of(topics, found.name)
    if role is None:
        return []
    out: list[Difference] = []
    if found.partitions != plan.partitions:
        out.append(
            Difference(found.name, "partitions", str(found.partitions), str(plan.partitions))
        )
    if found.replication_factor < plan.replication_factor:
        out.append(
            Difference(
                found.name,
                "replication factor",
                str(found.replication_factor),
                str(plan.replication_factor),
            )
        )
    for key, wanted in plan.configs(role).items():
        value = found.configs.get(key)
        # more replicas than the plan (an operator's choice) may ask for more in sync
        more_in_sync = (
            key == "min.insync.replicas"
            and value is not None
            and int(wanted) <= int(value) <= found.replication_factor
        )
        if value != wanted and not more_in_sync:
            out.append(Difference(found.name, key, value or "unset", wanted))
    return out
