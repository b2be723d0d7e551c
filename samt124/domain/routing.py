"""Instant referral: which body in which province answers a new request.

Rules live in ``samt124/domain/data/referral_rules.json`` as versions, each a complete ordered
list of rules with an ``effective_from`` instant; the version in force when the request was
submitted decides, so changing the rules (a new memorandum of understanding) never re-routes old
requests.
Inside a version the first matching rule wins; the last rule must match everything. A rule
matches on the province and on the request's category code or catalogue group; its ``body_id``
may name the province as ``{province}`` (``samt-org:{province}`` -> ``samt-org:IR-30``).
"""

from __future__ import annotations

import json
from bisect import bisect_right
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, get_args

from samt124.domain.catalogue import CATALOGUE
from samt124.domain.data_files import ReferralRulesFile, validated
from samt124.domain.events import (
    BodyKind,
    LetterRegistered,
    RequestReferred,
    RequestSubmitted,
    derived_id,
)

DEFAULT_RULES = Path(__file__).parent / "data" / "referral_rules.json"
SOURCE = "samt124-router"
BODY_KINDS: frozenset[str] = frozenset(get_args(BodyKind))

Intake = RequestSubmitted | LetterRegistered


@dataclass(frozen=True)
class ReferralRule:
    id: str
    body_id: str  # may contain "{province}"
    body_kind: BodyKind
    provinces: frozenset[str] = frozenset()  # empty: every province
    categories: frozenset[str] = frozenset()  # with groups empty: every category
    groups: frozenset[str] = frozenset()

    def matches(self, province: str, category: str, group: str | None) -> bool:
        if self.provinces and province not in self.provinces:
            return False
        if not self.categories and not self.groups:
            return True
        return category in self.categories or (group is not None and group in self.groups)


@dataclass(frozen=True)
class RulesVersion:
    version: str
    effective_from: datetime
    rules: tuple[ReferralRule, ...]

    def match(self, province: str, category: str, group: str | None) -> ReferralRule:
        for rule in self.rules:
            if rule.matches(province, category, group):
                return rule
        raise AssertionError("unreachable: the last rule matches everything")


@dataclass(frozen=True)
class ReferralRules:
    versions: tuple[RulesVersion, ...]  # by effective_from
    groups: Mapping[str, str]  # category code -> catalogue group
    _starts: tuple[datetime, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_starts", tuple(v.effective_from for v in self.versions))

    def version_at(self, t: datetime) -> RulesVersion:
        """The version in force at ``t``; the first version also rules what came before it
        (back-filled requests and letters older than the first rules still need a referral)."""
        index = bisect_right(self._starts, t) - 1
        return self.versions[max(index, 0)]


def _parse_rule(raw: Mapping[str, Any]) -> ReferralRule:
    if raw["body_kind"] not in BODY_KINDS:
        raise ValueError(f"rule {raw['id']}: unknown body kind {raw['body_kind']!r}")
    return ReferralRule(
        id=raw["id"],
        body_id=raw["body_id"],
        body_kind=raw["body_kind"],
        provinces=frozenset(raw.get("provinces", ())),
        categories=frozenset(raw.get("categories", ())),
        groups=frozenset(raw.get("groups", ())),
    )


def _parse_version(raw: Mapping[str, Any]) -> RulesVersion:
    rules = tuple(_parse_rule(r) for r in raw["rules"])
    last = rules[-1] if rules else None
    if last is None or last.provinces or last.categories or last.groups:
        raise ValueError(f"rules version {raw['version']}: the last rule must match everything")
    if len({r.id for r in rules}) != len(rules):
        raise ValueError(f"rules version {raw['version']}: rule ids repeat")
    effective_from = datetime.fromisoformat(raw["effective_from"])
    if effective_from.tzinfo is None:
        raise ValueError(f"rules version {raw['version']}: effective_from needs an offset")
    return RulesVersion(version=raw["version"], effective_from=effective_from, rules=rules)


def parse_rules(
    raw: Mapping[str, Any], groups: Mapping[str, str], source: str = "referral rules"
) -> ReferralRules:
    """Referral rules from the JSON document; ``groups`` maps category codes to their group.

    The document is validated first (:class:`~samt124.domain.data_files.ReferralRulesFile`); a
    problem raises :class:`~samt124.domain.data_files.DataFileError` naming ``source``.
    """
    validated(ReferralRulesFile, raw, source)
    versions = tuple(sorted((_parse_version(v) for v in raw["versions"]), key=_effective))
    if len({v.version for v in versions}) != len(versions):
        raise ValueError("referral rule versions repeat")
    return ReferralRules(versions=versions, groups=dict(groups))


def _effective(version: RulesVersion) -> datetime:
    return version.effective_from


def catalogue_groups() -> dict[str, str]:
    """Category code -> group code, from the 124 catalogue."""
    return {category.code: category.group for category in CATALOGUE.values()}


def load_rules(
    path: Path = DEFAULT_RULES, groups: Mapping[str, str] | None = None
) -> ReferralRules:
    """The shipped rules; categories are grouped by the catalogue unless ``groups`` is given."""
    raw = json.loads(path.read_text(encoding="utf-8"))
    return parse_rules(raw, catalogue_groups() if groups is None else groups, str(path))


def referral_bodies(
    rules: ReferralRules | None = None,
) -> Callable[[str, str, datetime], str]:
    """The body a request of (province, category, submission time) is referred to.

    For simulated traffic whose work is done by the body the router will refer it to.
    """
    chosen = load_rules() if rules is None else rules

    def body_for(province: str, category: str, at: datetime) -> str:
        rule = chosen.version_at(at).match(province, category, chosen.groups.get(category))
        return rule.body_id.format(province=province)

    return body_for


def route(submitted: Intake, rules: ReferralRules, *, recorded_at: datetime) -> RequestReferred:
    """The referral of a new request or letter, decided by the rules in force when submitted.

    The referral is instant, so it happens (``occurred_at``) at the submission's event time; its
    id derives from the submission's, so routing the same submission again yields the same fact.
    """
    version = rules.version_at(submitted.occurred_at)
    rule = version.match(
        submitted.province, submitted.category, rules.groups.get(submitted.category)
    )
    return RequestReferred(
        event_id=derived_id(submitted.event_id, "referred"),
        request_id=submitted.request_id,
        occurred_at=submitted.occurred_at,
        recorded_at=recorded_at,
        source=SOURCE,
        correlation_id=submitted.correlation_id,
        causation_id=submitted.event_id,
        province=submitted.province,
        body_id=rule.body_id.format(province=submitted.province),
        body_kind=rule.body_kind,
        rule_id=rule.id,
        rules_version=version.version,
    )
