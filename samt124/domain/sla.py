"""SLA policies and clocks, in working time.

Policies live in ``samt124/domain/data/sla_policies.json`` as versions with an ``effective_from``
instant. A request keeps the version in force when it was submitted; a new version applies to new
requests only, and a version is never edited in place. Inside a version each policy matches
requests on category (code or catalogue group), priority and the kind of body that answers, first
match wins, and gives targets in working hours per clock:

* ``FIRST_RESPONSE`` and ``RESOLUTION``: the ministry's commitment to the applicant (the SLA);
* ``OPERATIONAL``: the answering body's own target inside that commitment (the OLA), restarted
  for each body a request is referred to.

A clock is not a stored deadline: it is the working time elapsed so far plus, while it runs, the
instant it last started. The due time is computed from those with the current calendar, so an
announced closure moves every running deadline it touches, and only ever later.
"""

from __future__ import annotations

import json
from bisect import bisect_right
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, get_args

from samt124.domain.calendar import Calendar
from samt124.domain.data_files import SlaPoliciesFile, validated
from samt124.domain.events import BodyKind, EscalationLevel, Priority, SlaClock
from samt124.domain.routing import catalogue_groups
from samt124.domain.tehran_time import US_PER_HOUR

DEFAULT_POLICIES = Path(__file__).parent / "data" / "sla_policies.json"
CLOCKS: tuple[SlaClock, ...] = get_args(SlaClock)
LEVELS: frozenset[str] = frozenset(get_args(EscalationLevel))

FactKind = Literal["SlaWarning", "SlaBreached", "RequestEscalated"]


@dataclass(frozen=True)
class Policy:
    """Targets for the requests a policy matches (empty match sets match everything)."""

    id: str
    targets: Mapping[SlaClock, int]  # working microseconds; a clock without a target has no SLA
    categories: frozenset[str] = frozenset()
    groups: frozenset[str] = frozenset()
    priorities: frozenset[str] = frozenset()
    body_kinds: frozenset[str] = frozenset()

    def matches(self, category: str, group: str | None, priority: str, body_kind: str) -> bool:
        if self.priorities and priority not in self.priorities:
            return False
        if self.body_kinds and body_kind not in self.body_kinds:
            return False
        if not self.categories and not self.groups:
            return True
        return category in self.categories or (group is not None and group in self.groups)


@dataclass(frozen=True, slots=True)
class Threshold:
    """A point on a clock at which a fact is due: ``work`` microseconds of elapsed working time."""

    fact: FactKind
    mark: str  # "50", "75" (warnings), "100" (breach), "PROVINCE", "MINISTRY" (escalations)
    work: int
    percent: int | None = None
    level: EscalationLevel | None = None


@dataclass(frozen=True)
class Escalation:
    level: EscalationLevel
    after_breach: int  # working microseconds after the breach


@dataclass(frozen=True)
class PolicyVersion:
    version: str
    effective_from: datetime
    warning_percents: tuple[int, ...]
    escalation: Mapping[SlaClock, tuple[Escalation, ...]]
    policies: tuple[Policy, ...]
    _by_id: dict[str, Policy] = field(init=False, repr=False, compare=False)
    _thresholds: dict[tuple[str, str], tuple[Threshold, ...]] = field(
        init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_id", {p.id: p for p in self.policies})
        object.__setattr__(self, "_thresholds", {})

    def select(self, category: str, group: str | None, priority: str, body_kind: str) -> Policy:
        for policy in self.policies:
            if policy.matches(category, group, priority, body_kind):
                return policy
        raise LookupError(
            f"SLA version {self.version}: no policy for {category}/{priority}/{body_kind}"
        )

    def policy(self, policy_id: str) -> Policy:
        return self._by_id[policy_id]

    def thresholds(self, policy_id: str, clock: SlaClock) -> tuple[Threshold, ...]:
        """The facts a clock of this policy can give rise to, in the order they fall due."""
        key = (policy_id, clock)
        found = self._thresholds.get(key)
        if found is None:
            found = self._thresholds[key] = self._build_thresholds(policy_id, clock)
        return found

    def _build_thresholds(self, policy_id: str, clock: SlaClock) -> tuple[Threshold, ...]:
        target = self.policy(policy_id).targets.get(clock)
        if target is None:
            return ()
        points = [
            Threshold("SlaWarning", str(p), target * p // 100, percent=p)
            for p in self.warning_percents
        ]
        points.append(Threshold("SlaBreached", "100", target))
        points.extend(
            Threshold("RequestEscalated", e.level, target + e.after_breach, level=e.level)
            for e in self.escalation.get(clock, ())
        )
        return tuple(sorted(points, key=lambda t: t.work))


@dataclass(frozen=True)
class Policies:
    versions: tuple[PolicyVersion, ...]  # by effective_from
    groups: Mapping[str, str]  # category code -> catalogue group
    _starts: tuple[datetime, ...] = field(init=False, repr=False, compare=False)
    _by_version: dict[str, PolicyVersion] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_starts", tuple(v.effective_from for v in self.versions))
        object.__setattr__(self, "_by_version", {v.version: v for v in self.versions})

    def version_at(self, t: datetime) -> PolicyVersion:
        """The version in force at ``t``; the first version also applies to what came before it
        (back-filled requests and letters older than the first policies)."""
        index = bisect_right(self._starts, t) - 1
        return self.versions[max(index, 0)]

    def get(self, version: str) -> PolicyVersion:
        return self._by_version[version]

    def select(
        self, version: PolicyVersion, category: str, priority: Priority, body_kind: BodyKind
    ) -> Policy:
        return version.select(category, self.groups.get(category), priority, body_kind)


@dataclass(frozen=True, slots=True)
class Clock:
    """One SLA clock of one request, in one cycle.

    ``elapsed`` is the working time (microseconds) accumulated before ``running_since``, the
    instant (microseconds since the epoch) the clock last started; ``running_since`` is ``None``
    while the clock is paused or once it has stopped.
    """

    kind: SlaClock
    cycle: int
    policy_id: str
    elapsed: int = 0
    running_since: int | None = None
    stopped: bool = False

    @property
    def running(self) -> bool:
        return self.running_since is not None

    @property
    def paused(self) -> bool:
        return not self.stopped and self.running_since is None

    def elapsed_at(self, t: int, calendar: Calendar, province: str) -> int:
        if self.running_since is None or t <= self.running_since:
            return self.elapsed
        return self.elapsed + calendar.working_us_between(province, self.running_since, t)

    def reach(self, work: int, calendar: Calendar, province: str) -> int | None:
        """The instant elapsed working time reaches ``work`` (``None`` unless the clock runs)."""
        if self.running_since is None:
            return None
        if work <= self.elapsed:
            return self.running_since
        return calendar.add_working_us(province, self.running_since, work - self.elapsed)

    def checkpoint(self, t: int, calendar: Calendar, province: str) -> Clock:
        """The same clock with the time elapsed until ``t`` banked (before changing province)."""
        if self.running_since is None or t <= self.running_since:
            return self
        elapsed = self.elapsed_at(t, calendar, province)
        return Clock(self.kind, self.cycle, self.policy_id, elapsed, t, self.stopped)

    def pause(self, t: int, calendar: Calendar, province: str) -> Clock:
        if self.running_since is None:
            return self
        elapsed = self.elapsed_at(t, calendar, province)
        return Clock(self.kind, self.cycle, self.policy_id, elapsed, None, self.stopped)

    def resume(self, t: int) -> Clock:
        if not self.paused:
            return self
        return Clock(self.kind, self.cycle, self.policy_id, self.elapsed, t, self.stopped)

    def stop(self, t: int, calendar: Calendar, province: str) -> Clock:
        if self.stopped:
            return self
        elapsed = self.elapsed_at(t, calendar, province)
        return Clock(self.kind, self.cycle, self.policy_id, elapsed, None, True)


def _hours(value: float) -> int:
    if value <= 0:
        raise ValueError(f"SLA hours must be positive, not {value}")
    return round(value * US_PER_HOUR)


def _set(raw: Mapping[str, Any], key: str, allowed: Iterable[str] | None = None) -> frozenset[str]:
    values = frozenset(raw.get(key, ()))
    if allowed is not None and not values <= set(allowed):
        raise ValueError(f"unknown {key}: {sorted(values - set(allowed))}")
    return values


def _parse_policy(raw: Mapping[str, Any]) -> Policy:
    match = raw.get("match", {})
    targets: dict[SlaClock, int] = {}
    for clock, hours in raw["hours"].items():
        if clock not in CLOCKS:
            raise ValueError(f"policy {raw['id']}: unknown clock {clock!r}")
        targets[clock] = _hours(hours)
    return Policy(
        id=raw["id"],
        targets=targets,
        categories=_set(match, "categories"),
        groups=_set(match, "groups"),
        priorities=_set(match, "priorities", get_args(Priority)),
        body_kinds=_set(match, "body_kinds", get_args(BodyKind)),
    )


def _parse_version(raw: Mapping[str, Any]) -> PolicyVersion:
    name = raw["version"]
    percents = tuple(sorted(raw["warning_percents"]))
    if any(not 0 < p < 100 for p in percents):
        raise ValueError(f"SLA version {name}: warnings must lie strictly between 0 and 100")
    escalation: dict[SlaClock, tuple[Escalation, ...]] = {}
    for clock, ladder in raw.get("escalation", {}).items():
        if clock not in CLOCKS:
            raise ValueError(f"SLA version {name}: unknown clock {clock!r}")
        steps = []
        for step in ladder:
            if step["level"] not in LEVELS:
                raise ValueError(f"SLA version {name}: unknown level {step['level']!r}")
            after = round(step["after_breach_hours"] * US_PER_HOUR)
            steps.append(Escalation(level=step["level"], after_breach=after))
        escalation[clock] = tuple(steps)
    effective_from = datetime.fromisoformat(raw["effective_from"])
    if effective_from.tzinfo is None:
        raise ValueError(f"SLA version {name}: effective_from needs an offset")
    version = PolicyVersion(
        version=name,
        effective_from=effective_from,
        warning_percents=percents,
        escalation=escalation,
        policies=tuple(_parse_policy(p) for p in raw["policies"]),
    )
    if len(version.policies) != len({p.id for p in version.policies}):
        raise ValueError(f"SLA version {name}: policy ids repeat")
    for priority in get_args(Priority):  # every request must find a policy
        for body_kind in get_args(BodyKind):
            version.select("", None, priority, body_kind)
    return version


def parse_policies(
    raw: Mapping[str, Any], groups: Mapping[str, str], source: str = "SLA policies"
) -> Policies:
    """SLA policies from the JSON document; ``groups`` maps category codes to their group.

    The document is validated first (:class:`~samt124.domain.data_files.SlaPoliciesFile`); a
    problem raises :class:`~samt124.domain.data_files.DataFileError` naming ``source``.
    """
    validated(SlaPoliciesFile, raw, source)
    versions = sorted((_parse_version(v) for v in raw["versions"]), key=_effective)
    if len({v.version for v in versions}) != len(versions):
        raise ValueError("SLA policy versions repeat")
    return Policies(versions=tuple(versions), groups=dict(groups))


def _effective(version: PolicyVersion) -> datetime:
    return version.effective_from


def single_policy(
    version: str,
    *,
    first_response_hours: float,
    resolution_hours: float,
    warning_percents: Iterable[int] = (),
) -> dict[str, Any]:
    """A policy file's content: one version, one policy for every request, no escalation.

    For tests and benchmarks that want short, known deadlines.
    """
    return {
        "versions": [
            {
                "version": version,
                "effective_from": "2000-01-01T00:00:00+03:30",
                "warning_percents": list(warning_percents),
                "escalation": {},
                "policies": [
                    {
                        "id": version,
                        "match": {},
                        "hours": {
                            "FIRST_RESPONSE": first_response_hours,
                            "RESOLUTION": resolution_hours,
                        },
                    }
                ],
            }
        ]
    }


def load_policies(
    path: Path = DEFAULT_POLICIES, groups: Mapping[str, str] | None = None
) -> Policies:
    """The shipped policies; categories are grouped by the catalogue unless ``groups`` is given."""
    raw = json.loads(path.read_text(encoding="utf-8"))
    return parse_policies(raw, catalogue_groups() if groups is None else groups, str(path))
