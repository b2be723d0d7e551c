"""The 31 provinces of Iran, keyed by their current ISO 3166-2:IR code (IR-00 … IR-30)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from importlib.resources import files
from types import MappingProxyType


@dataclass(frozen=True)
class Province:
    code: str  # ISO 3166-2:IR, e.g. "IR-30"
    name_fa: str
    name_en: str
    weight: float  # relative share of simulated 124 traffic (industrial activity)


def _load() -> Mapping[str, Province]:
    text = files("samt124.domain").joinpath("data/provinces.json").read_text(encoding="utf-8")
    rows = json.loads(text)["provinces"]
    return MappingProxyType({row["code"]: Province(**row) for row in rows})


PROVINCES: Mapping[str, Province] = _load()

__all__ = ["PROVINCES", "Province"]
