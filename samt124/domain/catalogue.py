"""The 124 category catalogue, modelled on Open311's service list (code, name, group).

Each category carries the default priority given to a request filed under it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from importlib.resources import files
from types import MappingProxyType

from samt124.domain.events import Priority


@dataclass(frozen=True)
class Group:
    code: str  # e.g. "industrial_units"
    name_fa: str
    name_en: str


@dataclass(frozen=True)
class Category:
    code: str  # e.g. "MKT-HOARDING"; the ``category`` field of events
    name_fa: str
    name_en: str
    group: str  # a Group code
    priority: Priority  # default priority at intake


def _load() -> tuple[Mapping[str, Group], Mapping[str, Category]]:
    text = files("samt124.domain").joinpath("data/catalogue.json").read_text(encoding="utf-8")
    data = json.loads(text)
    groups = {row["code"]: Group(**row) for row in data["groups"]}
    categories = {row["code"]: Category(**row) for row in data["categories"]}
    return MappingProxyType(groups), MappingProxyType(categories)


GROUPS, CATALOGUE = _load()


def in_group(group: str) -> tuple[Category, ...]:
    """The categories of one group, in catalogue order."""
    return tuple(category for category in CATALOGUE.values() if category.group == group)


__all__ = ["CATALOGUE", "GROUPS", "Category", "Group", "in_group"]
