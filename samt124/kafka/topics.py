"""Topic names, and the partition of a key. One namespace (``samt124`` unless configured)
prefixes every topic."""

from __future__ import annotations

from dataclasses import dataclass

from kafka.partitioner.default import murmur2


def partition_of(key: bytes, partitions: int) -> int:
    """The partition Kafka's default partitioner gives ``key`` (murmur2, as in the Java client,
    kafka-python and aiokafka): where samt124 keeps everything about a request."""
    return int(murmur2(key) & 0x7FFFFFFF) % partitions


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
