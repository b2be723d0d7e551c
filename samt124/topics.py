"""Topic names. One namespace (``samt124`` unless configured) prefixes them all."""

from __future__ import annotations

from dataclasses import dataclass


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
        from samt124.provinces import PROVINCES

        return [self.province(code) for code in sorted(PROVINCES)]

    def is_province(self, topic: str) -> bool:
        return topic.startswith(self.province_prefix)
