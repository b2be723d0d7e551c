"""Typed data files: referral rules, SLA policies, working calendars and official holidays.

Each JSON file is validated at load by a pydantic model before the runtime structures (plain
frozen dataclasses, which the hot path uses) are built from it. A problem is reported as
``FILE: PATH: PROBLEM``, the path pointing inside the document (``versions[1].rules[0].body_kind``),
so a reviewer finds the line to fix. Unknown keys are refused (a misspelt ``categries`` would
otherwise match everything); ``note`` and ``notes`` are the free-text fields.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, time
from itertools import pairwise
from typing import Annotated, Any, Literal, TypeVar, get_args

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from samt124.domain.events import BodyKind, EscalationLevel, Priority, SlaClock
from samt124.domain.provinces import PROVINCES

Weekday = Literal["MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN"]
Kind = Literal["rules", "policies", "calendars", "holidays"]
KINDS: tuple[Kind, ...] = get_args(Kind)
ANY_PROVINCE = "*"
Model = TypeVar("Model", bound=BaseModel)


class DataFileError(ValueError):
    """A data file that does not hold what samt124 needs; one line per problem."""

    def __init__(self, source: str, problems: Sequence[tuple[str, str]]) -> None:
        self.source = source
        self.problems = tuple(problems)
        super().__init__("\n".join(self.lines()))

    def lines(self) -> list[str]:
        return [f"{self.source}: {path or '(document)'}: {text}" for path, text in self.problems]


def location(loc: Sequence[int | str]) -> str:
    """``('versions', 1, 'rules', 0, 'id')`` as ``versions[1].rules[0].id``."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def validated(model: type[Model], raw: Any, source: str) -> Model:
    """``raw`` as ``model``, or a :class:`DataFileError` naming ``source`` and each problem."""
    try:
        return model.model_validate(raw)
    except ValidationError as error:
        problems = [
            (location(e["loc"]), e["msg"].removeprefix("Value error, ")) for e in error.errors()
        ]
        raise DataFileError(source, problems) from None


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _unique(values: Sequence[str], what: str) -> None:
    repeated = sorted({v for v in values if values.count(v) > 1})
    if repeated:
        raise ValueError(f"{what} repeat: {', '.join(repeated)}")


def _known_provinces(codes: list[str]) -> list[str]:
    unknown = sorted(set(codes) - set(PROVINCES))
    if unknown:
        raise ValueError(f"unknown province codes {unknown} (ISO 3166-2, IR-00 ... IR-30)")
    return codes


# -- referral rules ----------------------------------------------------------------------------


class RuleModel(_Model):
    id: str = Field(min_length=1)
    body_id: str = Field(min_length=1)
    body_kind: BodyKind
    provinces: list[str] = []
    categories: list[str] = []
    groups: list[str] = []
    note: str = ""

    _provinces = field_validator("provinces")(_known_provinces)

    @property
    def matches_everything(self) -> bool:
        return not (self.provinces or self.categories or self.groups)


class RulesVersionModel(_Model):
    version: str = Field(min_length=1)
    effective_from: AwareDatetime
    rules: list[RuleModel] = Field(min_length=1)
    note: str = ""

    @model_validator(mode="after")
    def _complete(self) -> RulesVersionModel:
        if not self.rules[-1].matches_everything:
            raise ValueError(f"rules version {self.version}: the last rule must match everything")
        _unique([r.id for r in self.rules], f"rules version {self.version}: rule ids")
        return self


class ReferralRulesFile(_Model):
    versions: list[RulesVersionModel] = Field(min_length=1)
    notes: list[str] = []

    @model_validator(mode="after")
    def _versions(self) -> ReferralRulesFile:
        _unique([v.version for v in self.versions], "referral rule versions")
        return self


# -- SLA policies ------------------------------------------------------------------------------


class MatchModel(_Model):
    categories: list[str] = []
    groups: list[str] = []
    priorities: list[Priority] = []
    body_kinds: list[BodyKind] = []


class PolicyModel(_Model):
    id: str = Field(min_length=1)
    match: MatchModel = MatchModel()
    hours: dict[SlaClock, Annotated[float, Field(gt=0)]]
    note: str = ""

    def catches(self, priority: str, body_kind: str) -> bool:
        """Does this policy match every category of this priority and kind of body?"""
        m = self.match
        return (
            not m.categories
            and not m.groups
            and (not m.priorities or priority in m.priorities)
            and (not m.body_kinds or body_kind in m.body_kinds)
        )


class EscalationStepModel(_Model):
    level: EscalationLevel
    after_breach_hours: Annotated[float, Field(ge=0)]


class PolicyVersionModel(_Model):
    version: str = Field(min_length=1)
    effective_from: AwareDatetime
    warning_percents: list[Annotated[int, Field(gt=0, lt=100)]] = []
    escalation: dict[SlaClock, list[EscalationStepModel]] = {}
    policies: list[PolicyModel] = Field(min_length=1)
    note: str = ""

    @model_validator(mode="after")
    def _complete(self) -> PolicyVersionModel:
        _unique([p.id for p in self.policies], f"SLA version {self.version}: policy ids")
        for priority in get_args(Priority):
            for body_kind in get_args(BodyKind):
                if not any(p.catches(priority, body_kind) for p in self.policies):
                    raise ValueError(
                        f"SLA version {self.version}: no policy for every category of "
                        f"{priority} requests answered by {body_kind}"
                    )
        return self


class SlaPoliciesFile(_Model):
    versions: list[PolicyVersionModel] = Field(min_length=1)
    notes: list[str] = []

    @model_validator(mode="after")
    def _versions(self) -> SlaPoliciesFile:
        _unique([v.version for v in self.versions], "SLA policy versions")
        return self


# -- working calendars ---------------------------------------------------------------------------


def _span(span: str) -> tuple[time, time]:
    opening, _, closing = span.partition("-")
    try:
        return time.fromisoformat(opening), time.fromisoformat(closing)
    except ValueError:
        raise ValueError(f"office hours {span!r} are not HH:MM-HH:MM") from None


def office_hours(spans: Sequence[str]) -> tuple[tuple[time, time], ...]:
    """``["08:00-12:00", "13:00-14:00"]`` as sorted (opening, closing) pairs, checked."""
    hours = []
    for span in spans:
        opening, closing = _span(span)
        if closing <= opening:
            raise ValueError(f"office hours {span!r} must close after they open")
        hours.append((opening, closing))
    hours.sort()
    for (_, closing), (opening, _) in pairwise(hours):
        if opening < closing:
            raise ValueError(f"office hours {list(spans)} overlap")
    return tuple(hours)


class ScheduleModel(_Model):
    effective_from: date
    week: dict[Weekday, list[str]]
    note: str = ""

    @field_validator("week")
    @classmethod
    def _hours(cls, week: dict[Weekday, list[str]]) -> dict[Weekday, list[str]]:
        for spans in week.values():
            office_hours(spans)
        return week


class CalendarsFile(_Model):
    version: str = Field(min_length=1)
    time_zone: str
    official_holidays: str | None = None  # a holidays file (or the country of a shipped one)
    schedules: dict[str, list[ScheduleModel]]
    notes: list[str] = []

    @field_validator("time_zone")
    @classmethod
    def _zone(cls, name: str) -> str:
        from samt124.domain.tehran_time import zone

        try:
            zone(name)
        except (KeyError, ValueError) as error:  # ZoneInfoNotFoundError is a KeyError
            raise ValueError(f"unknown time zone {name!r}") from error
        return name

    @field_validator("schedules")
    @classmethod
    def _provinces(
        cls, schedules: dict[str, list[ScheduleModel]]
    ) -> dict[str, list[ScheduleModel]]:
        if not schedules.get(ANY_PROVINCE):
            raise ValueError('calendars need a default schedule under "*"')
        _known_provinces([p for p in schedules if p != ANY_PROVINCE])
        return schedules


# -- official holidays ---------------------------------------------------------------------------


class HolidayModel(_Model):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    day: date = Field(alias="date")
    name: str = Field(min_length=1)
    local_name: str = ""  # in the country's language
    jalali: str = ""


class HolidaysFile(_Model):
    country: str = Field(min_length=2, max_length=2)
    version: str = Field(min_length=1)
    first_day: date
    last_day: date
    holidays: list[HolidayModel]
    source: str = ""
    notes: list[str] = []

    @model_validator(mode="after")
    def _span(self) -> HolidaysFile:
        if self.last_day < self.first_day:
            raise ValueError("last_day comes before first_day")
        days = [h.day for h in self.holidays]
        outside = [d.isoformat() for d in days if not self.first_day <= d <= self.last_day]
        if outside:
            raise ValueError(f"holidays outside first_day..last_day: {outside}")
        if days != sorted(set(days)):
            raise ValueError("holidays must be in date order, each date once")
        return self


MODELS: Mapping[Kind, type[BaseModel]] = {
    "rules": ReferralRulesFile,
    "policies": SlaPoliciesFile,
    "calendars": CalendarsFile,
    "holidays": HolidaysFile,
}
DESCRIPTIONS: Mapping[Kind, str] = {
    "rules": "referral rules",
    "policies": "SLA policies",
    "calendars": "working calendars",
    "holidays": "official holidays",
}


def kind_of(raw: Any) -> Kind | None:
    """Which kind of data file a JSON document is, from its keys; ``None`` when unclear."""
    if not isinstance(raw, dict):
        return None
    if "schedules" in raw:
        return "calendars"
    if "holidays" in raw and "country" in raw:
        return "holidays"
    versions = raw.get("versions")
    if isinstance(versions, list) and versions and isinstance(versions[0], dict):
        if "rules" in versions[0]:
            return "rules"
        if "policies" in versions[0]:
            return "policies"
    return None
