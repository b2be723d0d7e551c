"""The lifecycle facts of a 124 request, as immutable Python values.

Each class mirrors one Avro record in ``schemas/<Name>.avsc`` (the source of truth); the
converters :func:`to_record` and :func:`from_record` are the only bridge between them.
Timestamps are timezone-aware ``datetime`` in UTC on the wire (Avro ``timestamp-millis``);
calendar days are ``date`` (Avro ``date``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal, NewType, TypeAlias

Channel = Literal["PHONE_124", "WEB_PORTAL", "SAMTEMA_APP", "SMS", "IN_PERSON", "SECRETARIAT"]
Priority = Literal["LOW", "NORMAL", "HIGH", "URGENT"]
BodyKind = Literal["SAMT_ORGANIZATION", "KHANEH_SAMT", "ASSOCIATION", "OTHER_MINISTRY"]
Outcome = Literal[
    "VIOLATOR",
    "NOT_VIOLATOR",
    "SATISFIED",
    "REFERRED_TO_PENALTY_AUTHORITY",
    "NOT_OUR_RESPONSIBILITY",
    "DUPLICATE",
    "NO_FURTHER_ACTION",
]
SlaClock = Literal["FIRST_RESPONSE", "RESOLUTION", "OPERATIONAL"]
EscalationLevel = Literal["PROVINCE", "MINISTRY"]
Long = NewType("Long", int)  # an Avro long (a plain int is an Avro int)


@dataclass(frozen=True, kw_only=True)
class Envelope:
    """Fields every event carries first, in this order."""

    event_id: str  # UUID, stable across replays
    request_id: str  # the request this fact is about (closures: "closure:<province>:<first_day>")
    occurred_at: datetime  # event time, when it happened in the world
    recorded_at: datetime  # when samt124 (or the upstream system) recorded it
    source: str  # the publishing system, e.g. "call-centre-124", "portal", "samt124-router"
    actor: str | None = None  # who did it (operator id, body id), if known
    correlation_id: str | None = None  # groups the facts of one conversation or batch
    causation_id: str | None = None  # event_id of the fact that caused this one


@dataclass(frozen=True, kw_only=True)
class Requester:
    """The industrial unit or person asking. Personal data: never stored in clear downstream."""

    national_id: str  # the unit's national id (11 digits) or a person's national code (10)
    name: str
    phone: str | None = None
    email: str | None = None


@dataclass(frozen=True, kw_only=True)
class RequestSubmitted(Envelope):
    channel: Channel
    requester: Requester
    category: str  # catalogue code
    province: str  # ISO 3166-2:IR, e.g. "IR-30"
    subject: str
    body: str
    priority: Priority
    attachment_count: int = 0


@dataclass(frozen=True, kw_only=True)
class LetterRegistered(Envelope):
    """A provincial secretariat letter entered into 124 (after the secretariat cutover)."""

    registry_number: str
    sender_organization: str
    letter_date: date
    category: str
    province: str
    subject: str
    body: str
    priority: Priority
    attachment_count: int = 0


@dataclass(frozen=True, kw_only=True)
class RequestReferred(Envelope):
    """samt124's routing decision: which body in which province answers this request."""

    province: str
    body_id: str
    body_kind: BodyKind
    rule_id: str
    rules_version: str


@dataclass(frozen=True, kw_only=True)
class RequestAssigned(Envelope):
    body_id: str
    assignee: str


@dataclass(frozen=True, kw_only=True)
class RequestAwaitingApplicant(Envelope):
    """The body asked the applicant for something: SLA clocks pause."""

    reason: str


@dataclass(frozen=True, kw_only=True)
class ApplicantResponded(Envelope):
    """The applicant answered: SLA clocks resume."""

    note: str | None = None


@dataclass(frozen=True, kw_only=True)
class RequestResponded(Envelope):
    """A body's response to the applicant (the first one stops the first-response clock)."""

    body_id: str
    message: str


@dataclass(frozen=True, kw_only=True)
class RequestResolved(Envelope):
    body_id: str
    outcome: Outcome
    resolution_note: str


@dataclass(frozen=True, kw_only=True)
class RequestClosed(Envelope):
    satisfaction: int | None = None  # 1..5 when the applicant rated the answer


@dataclass(frozen=True, kw_only=True)
class RequestReopened(Envelope):
    reason: str


@dataclass(frozen=True, kw_only=True)
class RequestTransferred(Envelope):
    """Re-referral to another province, body or ministry."""

    to_province: str
    to_body_id: str
    to_body_kind: BodyKind
    reason: str


@dataclass(frozen=True, kw_only=True)
class OfficeClosureAnnounced(Envelope):
    """A province's offices close for whole days (heat, cold, pollution, energy saving...)."""

    province: str
    first_day: date
    last_day: date
    reason: str


@dataclass(frozen=True, kw_only=True)
class SlaWarning(Envelope):
    clock: SlaClock
    # 1 for the first clock run; RESOLUTION +1 on each reopen and each transfer into or out of
    # SAMT's remit; OPERATIONAL +1 on each reopen and each change of holder (README "Transfers")
    cycle: int
    threshold_percent: int  # e.g. 50, 75
    due_at: datetime
    body_id: str
    province: str
    policy_id: str
    policy_version: str


@dataclass(frozen=True, kw_only=True)
class SlaBreached(Envelope):
    clock: SlaClock
    cycle: int
    due_at: datetime
    body_id: str
    province: str
    policy_id: str
    policy_version: str


@dataclass(frozen=True, kw_only=True)
class RequestEscalated(Envelope):
    clock: SlaClock
    cycle: int
    level: EscalationLevel
    body_id: str
    province: str
    policy_id: str
    policy_version: str


@dataclass(frozen=True, kw_only=True)
class SlaDeadlinesSet(Envelope):
    """Where a request's SLA clocks stand after a fact that moved them (samt124 derives it).

    Published by the worker on the request's province topic whenever a fact starts, pauses,
    resumes, stops, hands over or restarts a clock (``causation_id`` names that fact, and
    ``occurred_at`` is its time), so that a report can tell at any instant which requests are
    past which deadline without waiting for a breach to be published. Per clock: the cycle
    (0: the request has no such clock), the policy and its target in working microseconds (0:
    no target), the working time banked before ``*_running_since`` (null while paused or once
    stopped), whether it stopped, and the deadline the worker computed (running clocks only;
    an office closure announced later moves it: reports recompute it from the banked time).
    """

    province: str
    body_id: str
    body_kind: BodyKind
    status: str
    policy_version: str
    first_response_cycle: int
    first_response_policy_id: str
    first_response_target_us: Long
    first_response_elapsed_us: Long
    first_response_running_since: datetime | None = None
    first_response_stopped: bool
    first_response_due_at: datetime | None = None
    resolution_cycle: int
    resolution_policy_id: str
    resolution_target_us: Long
    resolution_elapsed_us: Long
    resolution_running_since: datetime | None = None
    resolution_stopped: bool
    resolution_due_at: datetime | None = None
    operational_cycle: int
    operational_policy_id: str
    operational_target_us: Long
    operational_elapsed_us: Long
    operational_running_since: datetime | None = None
    operational_stopped: bool
    operational_due_at: datetime | None = None


Event: TypeAlias = (
    RequestSubmitted
    | LetterRegistered
    | RequestReferred
    | RequestAssigned
    | RequestAwaitingApplicant
    | ApplicantResponded
    | RequestResponded
    | RequestResolved
    | RequestClosed
    | RequestReopened
    | RequestTransferred
    | OfficeClosureAnnounced
    | SlaWarning
    | SlaBreached
    | RequestEscalated
    | SlaDeadlinesSet
)

EVENT_TYPES: dict[str, type[Event]] = {
    cls.__name__: cls
    for cls in (
        RequestSubmitted,
        LetterRegistered,
        RequestReferred,
        RequestAssigned,
        RequestAwaitingApplicant,
        ApplicantResponded,
        RequestResponded,
        RequestResolved,
        RequestClosed,
        RequestReopened,
        RequestTransferred,
        OfficeClosureAnnounced,
        SlaWarning,
        SlaBreached,
        RequestEscalated,
        SlaDeadlinesSet,
    )
}

_FIELD_NAMES = {
    name: frozenset(f.name for f in dataclasses.fields(cls)) for name, cls in EVENT_TYPES.items()
}

SLA_EVENT_TYPES = frozenset({"SlaWarning", "SlaBreached", "RequestEscalated"})
# Facts only samt124 publishes: refused on intake.
DERIVED_EVENT_TYPES = SLA_EVENT_TYPES | {"SlaDeadlinesSet"}


DERIVED_ID_NAMESPACE = uuid.UUID("47ce596b-1c27-456a-8b00-40fb5d06a230")


_NAMESPACE_BYTES = DERIVED_ID_NAMESPACE.bytes


def derived_id(*parts: object) -> str:
    """The UUIDv5 of a fact samt124 derives, from the parts that identify it (replay-stable).

    ``str(uuid.uuid5(DERIVED_ID_NAMESPACE, "|".join(map(str, parts))))`` spelled out (RFC 4122:
    SHA-1 of the namespace and the name, version 5, variant 10), without building a ``UUID``.
    """
    name = "|".join(str(part) for part in parts).encode()
    digest = hashlib.sha1(_NAMESPACE_BYTES + name, usedforsecurity=False).hexdigest()
    variant = "89ab"[int(digest[16], 16) & 3]
    return f"{digest[:8]}-{digest[8:12]}-5{digest[13:16]}-{variant}{digest[17:20]}-{digest[20:32]}"


def event_type(event: Event) -> str:
    """The Avro record name of an event (also its Kafka ``event-type`` header)."""
    return type(event).__name__


def to_record(event: Event) -> dict[str, Any]:
    """A plain dict in the shape of the event's Avro record."""
    record = dict(vars(event))  # field order; values are immutable, no deep copy needed
    if isinstance(event, RequestSubmitted):
        record["requester"] = dict(vars(event.requester))
    return record


def from_record(name: str, record: dict[str, Any]) -> Event:
    """Build the event named ``name`` from a decoded Avro record (unknown fields are ignored)."""
    cls = EVENT_TYPES[name]
    names = _FIELD_NAMES[name]
    values = {key: value for key, value in record.items() if key in names}
    if cls is RequestSubmitted and isinstance(values.get("requester"), dict):
        values["requester"] = Requester(**values["requester"])
    return cls(**values)


def replace(event: Event, **changes: Any) -> Event:
    """A copy of ``event`` with some fields changed (events are immutable)."""
    return dataclasses.replace(event, **changes)


__all__ = [
    "DERIVED_EVENT_TYPES",
    "DERIVED_ID_NAMESPACE",
    "EVENT_TYPES",
    "SLA_EVENT_TYPES",
    "ApplicantResponded",
    "BodyKind",
    "Channel",
    "Envelope",
    "Event",
    "LetterRegistered",
    "Long",
    "OfficeClosureAnnounced",
    "Outcome",
    "Priority",
    "RequestAssigned",
    "RequestAwaitingApplicant",
    "RequestClosed",
    "RequestEscalated",
    "RequestReferred",
    "RequestReopened",
    "RequestResolved",
    "RequestResponded",
    "RequestSubmitted",
    "RequestTransferred",
    "Requester",
    "SlaBreached",
    "SlaDeadlinesSet",
    "SlaWarning",
    "derived_id",
    "event_type",
    "from_record",
    "to_record",
]
