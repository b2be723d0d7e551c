"""A request's state as a fold over its events, and the facts samt124 derives from it.

:func:`decide` takes the state so far and one event, and returns the new state with the facts the
event makes samt124 publish: the referral of a new request, and the SLA facts that fell due up to
the event's time (before a pause or a stop banks the clock). :func:`due_sla_facts` gives the SLA
facts due at any instant, for the timer; :func:`next_due` says when to look next.

Facts samt124 publishes carry ids derived from what they are about (request, clock, cycle,
threshold), so a worker that crashes and emits again produces the same ids. Folding an SLA fact
back records it as emitted: each one is published once per request, clock and cycle.

The worker is expected to call :func:`due_sla_facts` after each :func:`decide` and fold what it
publishes back with :func:`decide`; clocks that stop or pause emit what fell due before that
inside :func:`decide` itself, so only running clocks are left to the timer.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Literal

from samt124.domain.calendar import Calendar, Closure
from samt124.domain.events import (
    ApplicantResponded,
    BodyKind,
    Channel,
    Event,
    LetterRegistered,
    OfficeClosureAnnounced,
    Priority,
    RequestAssigned,
    RequestAwaitingApplicant,
    RequestClosed,
    RequestEscalated,
    RequestReferred,
    RequestReopened,
    RequestResolved,
    RequestResponded,
    RequestSubmitted,
    RequestTransferred,
    SlaBreached,
    SlaClock,
    SlaDeadlinesSet,
    SlaWarning,
    derived_id,
)
from samt124.domain.routing import ReferralRules, route
from samt124.domain.sla import Clock, Policies, PolicyVersion, Threshold
from samt124.domain.tehran_time import from_us, to_us

Status = Literal[
    "REFERRED",
    "ASSIGNED",
    "IN_PROGRESS",
    "AWAITING_APPLICANT",
    "RESPONDED",
    "RESOLVED",
    "CLOSED",
    "REOPENED",
]
SlaFact = SlaWarning | SlaBreached | RequestEscalated
SOURCE = "samt124-sla"
SEEN_LIMIT = 64  # event ids remembered per request for de-duplication
STATE_FORMAT = 2  # 1: release 0.1.0, positional clocks (still read)
# Format 1 stored a clock as a row of these fields, in this order.
_CLOCK_ROW_FIELDS = ("kind", "cycle", "policy_id", "elapsed", "running_since", "stopped")
# The state's JSON writer, made once (``json.dumps`` with options builds one per call).
_STATE_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


@dataclass(frozen=True, slots=True)
class RequestState:
    """Everything the streams need to know about one request.

    ``emitted`` holds ``"<clock>|<cycle>|<mark>"`` for each SLA fact already published (marks as in
    :class:`samt124.domain.sla.Threshold`); ``seen`` the ids of the latest events, oldest first.
    """

    request_id: str
    province: str
    category: str
    priority: Priority
    channel: Channel
    submitted_at: datetime
    status: Status
    body_id: str
    body_kind: BodyKind
    policy_version: str
    clocks: tuple[Clock, ...]  # the current cycle of each clock, at most one per kind
    emitted: frozenset[str] = frozenset()
    seen: tuple[str, ...] = ()

    def clock(self, kind: SlaClock) -> Clock | None:
        for clock in self.clocks:
            if clock.kind == kind:
                return clock
        return None

    def to_json(self) -> dict[str, Any]:
        """A compact JSON-ready dict (times as microseconds since the epoch).

        Every value is named, so the stored state does not depend on the order of any class's
        fields; a clock leaves out the fields that have their default value.
        """
        return {
            "v": STATE_FORMAT,
            "id": self.request_id,
            "province": self.province,
            "category": self.category,
            "priority": self.priority,
            "channel": self.channel,
            "submitted": to_us(self.submitted_at),
            "status": self.status,
            "body": {"id": self.body_id, "kind": self.body_kind},
            "policy": self.policy_version,
            "clocks": [_clock_json(c) for c in self.clocks],
            "emitted": sorted(self.emitted),
            "seen": list(self.seen),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RequestState:
        """The state :meth:`to_json` wrote, or one written by an earlier format still readable."""
        version = data["v"]
        if version == STATE_FORMAT:
            body_id, body_kind = data["body"]["id"], data["body"]["kind"]
            clocks = tuple(_clock_from_json(c) for c in data["clocks"])
        elif version == 1:  # release 0.1.0: the body and each clock as positional rows
            body_id, body_kind = data["body"]
            clocks = tuple(_clock_from_row(row) for row in data["clocks"])
        else:
            raise ValueError(f"unknown request state format {version!r}")
        return cls(
            request_id=data["id"],
            province=data["province"],
            category=data["category"],
            priority=data["priority"],
            channel=data["channel"],
            submitted_at=from_us(data["submitted"]),
            status=data["status"],
            body_id=body_id,
            body_kind=body_kind,
            policy_version=data["policy"],
            clocks=clocks,
            emitted=frozenset(data["emitted"]),
            seen=tuple(data["seen"]),
        )

    def to_bytes(self) -> bytes:
        """The state as its changelog holds it: compact UTF-8 JSON of :meth:`to_json`."""
        return _STATE_JSON.encode(self.to_json()).encode()

    @classmethod
    def from_bytes(cls, raw: bytes) -> RequestState:
        return cls.from_json(json.loads(raw))


def _clock_json(clock: Clock) -> dict[str, Any]:
    out: dict[str, Any] = {"kind": clock.kind, "cycle": clock.cycle, "policy": clock.policy_id}
    if clock.elapsed:
        out["elapsed"] = clock.elapsed
    if clock.running_since is not None:
        out["since"] = clock.running_since
    if clock.stopped:
        out["stopped"] = True
    return out


def _clock_from_json(data: dict[str, Any]) -> Clock:
    return Clock(
        kind=data["kind"],
        cycle=data["cycle"],
        policy_id=data["policy"],
        elapsed=data.get("elapsed", 0),
        running_since=data.get("since"),
        stopped=data.get("stopped", False),
    )


def _clock_from_row(row: list[Any]) -> Clock:
    named = dict(zip(_CLOCK_ROW_FIELDS, row, strict=True))
    return Clock(
        kind=named["kind"],
        cycle=named["cycle"],
        policy_id=named["policy_id"],
        elapsed=named["elapsed"],
        running_since=named["running_since"],
        stopped=named["stopped"],
    )


@dataclass(frozen=True)
class Context:
    """What a decision may consult: the rules and policies in force, the calendar, the clock."""

    rules: ReferralRules
    policies: Policies
    calendar: Calendar
    now: datetime  # recorded_at of the facts decided


@dataclass(frozen=True, slots=True)
class Decision:
    state: RequestState | None  # None: the event is about a request never opened here
    outputs: tuple[Event, ...] = ()
    duplicate: bool = False


def decide(state: RequestState | None, event: Event, ctx: Context) -> Decision:
    """Fold one event into a request's state, with the facts samt124 publishes because of it."""
    if isinstance(event, OfficeClosureAnnounced):
        return Decision(state)  # changes the calendar (see closure_of), not a request
    if state is None:
        if isinstance(event, RequestSubmitted | LetterRegistered):
            return _open(event, ctx)
        return Decision(None)
    if event.event_id in state.seen:
        return Decision(state, duplicate=True)
    if isinstance(event, RequestSubmitted | LetterRegistered):
        return Decision(_remember(state, event.event_id), duplicate=True)
    if isinstance(event, SlaWarning | SlaBreached | RequestEscalated):
        return Decision(_remember(_mark(state, event), event.event_id))
    due = due_sla_facts(state, event.occurred_at, ctx.calendar, ctx.policies, recorded_at=ctx.now)
    for fact in due:
        state = _mark(state, fact)
    before = state
    state = _apply(state, event, to_us(event.occurred_at), ctx)
    outputs: tuple[Event, ...] = due
    if _moved(before, state):
        outputs = (*due, deadlines_fact(state, event, ctx))
    return Decision(_remember(state, event.event_id, *(f.event_id for f in due)), outputs)


HEADQUARTERS = (
    "samt-hq"  # the ministry's headquarters: re-refers, transfers and reopens any request
)

_OPEN: frozenset[Status] = frozenset(
    {"REFERRED", "ASSIGNED", "IN_PROGRESS", "RESPONDED", "REOPENED"}
)
_HELD: frozenset[Status] = _OPEN | {"AWAITING_APPLICANT"}
# The statuses each action may be taken in; an action in any other is refused.
ALLOWED_IN: dict[str, frozenset[Status]] = {
    "RequestAssigned": _OPEN,
    "RequestAwaitingApplicant": _OPEN,
    "ApplicantResponded": frozenset({"AWAITING_APPLICANT"}),
    "RequestResponded": _OPEN,
    "RequestResolved": _HELD,
    "RequestTransferred": _HELD,
    "RequestReferred": _HELD,
    "RequestClosed": _HELD | {"RESOLVED"},
    "RequestReopened": frozenset({"RESOLVED", "CLOSED"}),
}
# Actions only the body that holds the request takes (``actor`` is its body id).
_HOLDER_ONLY = frozenset(
    {"RequestAssigned", "RequestAwaitingApplicant", "RequestResponded", "RequestResolved"}
)


def refusal(state: RequestState, event: Event) -> str | None:
    """Why ``event`` may not be applied to the request as it stands (``None``: it may).

    Who may act: the actions of the work (assign, ask the applicant, respond, resolve) only by
    the body that holds the request, its id as ``actor`` (and as ``body_id`` where the event
    names one); a transfer by the holder or headquarters (:data:`HEADQUARTERS`); a re-referral
    by headquarters; the applicant's answer and the closing by the applicant's channel (no
    ``actor``), the holder or headquarters; a reopening by the applicant's channel or
    headquarters. What may happen: each action only in the statuses of :data:`ALLOWED_IN`
    (nothing is resolved once resolved or closed, nobody answers an applicant not asked).
    Intake, closures and SLA facts are not actions: ``None``.
    """
    name = type(event).__name__
    allowed = ALLOWED_IN.get(name)
    if allowed is None:
        return None
    actor, holder = event.actor, state.body_id
    if name in _HOLDER_ONLY:
        if actor != holder:
            return f"{name} by {actor!r}: only the holder {holder!r} may"
        named = getattr(event, "body_id", holder)
        if named != holder:
            return f"{name} names body {named!r}, but {holder!r} holds the request"
    elif name == "RequestTransferred" and actor not in (holder, HEADQUARTERS):
        return f"{name} by {actor!r}: only the holder {holder!r} or {HEADQUARTERS!r} may"
    elif name == "RequestReferred" and actor != HEADQUARTERS:
        return f"{name} by {actor!r}: only {HEADQUARTERS!r} re-refers a request"
    elif name in ("ApplicantResponded", "RequestClosed") and actor not in (
        None,
        holder,
        HEADQUARTERS,
    ):
        return f"{name} by {actor!r}: only the applicant, the holder {holder!r} or {HEADQUARTERS!r}"
    elif name == "RequestReopened" and actor not in (None, HEADQUARTERS):
        return f"{name} by {actor!r}: only the applicant or {HEADQUARTERS!r} may reopen"
    if state.status not in allowed:
        return f"{name} not allowed when the request is {state.status}"
    return None


def closure_of(event: OfficeClosureAnnounced) -> Closure:
    """The calendar closure an announcement makes (apply with ``Calendar.with_closure``)."""
    return Closure(event.province, event.first_day, event.last_day)


def due_sla_facts(
    state: RequestState,
    now: datetime,
    calendar: Calendar,
    policies: Policies,
    *,
    recorded_at: datetime | None = None,
) -> tuple[SlaFact, ...]:
    """The warnings, breaches and escalations of running clocks due at ``now``, not yet emitted.

    Each fact happened (``occurred_at``) when its clock reached the threshold, whenever the timer
    noticed; it is recorded at ``recorded_at`` (default ``now``).
    """
    version = policies.get(state.policy_version)
    t = to_us(now)
    facts: list[SlaFact] = []
    for clock in state.clocks:
        if not clock.running:
            continue
        points = version.thresholds(clock.policy_id, clock.kind)
        if not points:
            continue
        elapsed = clock.elapsed_at(t, calendar, state.province)
        for point in points:
            if point.work > elapsed:
                break
            if _key(clock.kind, clock.cycle, point.mark) not in state.emitted:
                facts.append(
                    _fact(
                        state,
                        clock,
                        point,
                        version=version,
                        calendar=calendar,
                        recorded_at=recorded_at or now,
                    )
                )
    return tuple(facts)


def next_due(state: RequestState, calendar: Calendar, policies: Policies) -> datetime | None:
    """The earliest instant an SLA fact of a running clock falls due; ``None`` if none can."""
    version = policies.get(state.policy_version)
    earliest: int | None = None
    for clock in state.clocks:
        if not clock.running:
            continue
        for point in version.thresholds(clock.policy_id, clock.kind):
            if _key(clock.kind, clock.cycle, point.mark) not in state.emitted:
                at = clock.reach(point.work, calendar, state.province)
                if at is not None and (earliest is None or at < earliest):
                    earliest = at
                break
    return None if earliest is None else from_us(earliest)


def deadline(
    state: RequestState, kind: SlaClock, calendar: Calendar, policies: Policies
) -> datetime | None:
    """When the ``kind`` clock breaches if it keeps running (``None``: not running, no target)."""
    clock = state.clock(kind)
    if clock is None:
        return None
    target = policies.get(state.policy_version).policy(clock.policy_id).targets.get(kind)
    if target is None:
        return None
    at = clock.reach(target, calendar, state.province)
    return None if at is None else from_us(at)


# -- the fold ------------------------------------------------------------------------------


def _open(event: RequestSubmitted | LetterRegistered, ctx: Context) -> Decision:
    referral = route(event, ctx.rules, recorded_at=ctx.now)
    version = ctx.policies.version_at(event.occurred_at)
    policy = ctx.policies.select(version, event.category, event.priority, referral.body_kind)
    at = to_us(event.occurred_at)
    state = RequestState(
        request_id=event.request_id,
        province=referral.province,
        category=event.category,
        priority=event.priority,
        channel=event.channel if isinstance(event, RequestSubmitted) else "SECRETARIAT",
        submitted_at=event.occurred_at,
        status="REFERRED",
        body_id=referral.body_id,
        body_kind=referral.body_kind,
        policy_version=version.version,
        clocks=(
            Clock("FIRST_RESPONSE", 1, policy.id, running_since=at),
            Clock("RESOLUTION", 1, policy.id, running_since=at),
            Clock("OPERATIONAL", 1, policy.id, running_since=at),
        ),
        seen=(event.event_id, referral.event_id),
    )
    return Decision(state, (referral, deadlines_fact(state, event, ctx)))


def _apply(state: RequestState, event: Event, at: int, ctx: Context) -> RequestState:
    calendar, province = ctx.calendar, state.province
    if isinstance(event, RequestTransferred):
        return _refer(state, (event.to_province, event.to_body_id, event.to_body_kind), at, ctx)
    if isinstance(event, RequestReferred):
        if (event.province, event.body_id) == (state.province, state.body_id):
            return state
        return _refer(state, (event.province, event.body_id, event.body_kind), at, ctx)
    if isinstance(event, RequestAssigned):
        return replace(state, status="ASSIGNED")
    if isinstance(event, RequestAwaitingApplicant):
        clocks = tuple(c.pause(at, calendar, province) for c in state.clocks)
        return replace(state, status="AWAITING_APPLICANT", clocks=clocks)
    if isinstance(event, ApplicantResponded):
        clocks = tuple(c.resume(at) for c in state.clocks)
        return replace(state, status="IN_PROGRESS", clocks=clocks)
    if isinstance(event, RequestResponded):
        clocks = tuple(
            c.stop(at, calendar, province) if c.kind == "FIRST_RESPONSE" else c
            for c in state.clocks
        )
        return replace(state, status="RESPONDED", clocks=clocks)
    if isinstance(event, RequestResolved | RequestClosed):
        clocks = tuple(c.stop(at, calendar, province) for c in state.clocks)
        status: Status = "RESOLVED" if isinstance(event, RequestResolved) else "CLOSED"
        return replace(state, status=status, clocks=clocks)
    if isinstance(event, RequestReopened):
        restarted = {"RESOLUTION", "OPERATIONAL"}
        clocks = tuple(
            Clock(c.kind, c.cycle + 1, c.policy_id, running_since=at) if c.kind in restarted else c
            for c in state.clocks
        )
        return _with_clocks(replace(state, status="REOPENED"), clocks)
    return state  # intake, closures and SLA facts are handled by decide


def in_remit(body_kind: BodyKind) -> bool:
    """Whether a body answers within SAMT's remit (every kind but another ministry)."""
    return body_kind != "OTHER_MINISTRY"


def _refer(
    state: RequestState, to: tuple[str, str, BodyKind], at: int, ctx: Context
) -> RequestState:
    """Hand the request to another body (the transfer rule, README "Transfers").

    * The new holder's operational clock (the OLA) starts a new cycle under its own policy.
    * Within SAMT's remit (another province, Khaneh Samt, an association) the applicant's
      first-response and resolution clocks keep running, same cycle, same policy: the ministry's
      commitment to the applicant does not move because the work moved inside it.
    * Across the remit (to another ministry, or back from one) the resolution clock starts a new
      cycle under the new holder's policy, from the transfer (paused while the applicant is
      awaited): the commitment changes hands, and each body is judged by its own target. The
      first-response clock is not restarted.
    """
    province, body_id, body_kind = to
    version = ctx.policies.get(state.policy_version)
    policy = ctx.policies.select(version, state.category, state.priority, body_kind)
    paused = state.status == "AWAITING_APPLICANT"
    since = None if paused else at
    crosses = in_remit(body_kind) != in_remit(state.body_kind)

    def handed_over(clock: Clock) -> Clock:
        if clock.kind == "OPERATIONAL" or (crosses and clock.kind == "RESOLUTION"):
            if clock.stopped and clock.kind == "RESOLUTION":  # resolved or closed: stays so
                return Clock(clock.kind, clock.cycle + 1, policy.id, stopped=True)
            return Clock(clock.kind, clock.cycle + 1, policy.id, running_since=since)
        return clock.checkpoint(at, ctx.calendar, state.province)

    clocks = tuple(handed_over(c) for c in state.clocks)
    if state.clock("OPERATIONAL") is None:
        clocks = (*clocks, Clock("OPERATIONAL", 1, policy.id, running_since=since))
    moved = replace(
        state, province=province, body_id=body_id, body_kind=body_kind, status="REFERRED"
    )
    return _with_clocks(moved, clocks)


def _with_clocks(state: RequestState, clocks: tuple[Clock, ...]) -> RequestState:
    """Replace the clocks, forgetting the emitted marks of cycles that are over."""
    current = {f"{c.kind}|{c.cycle}|" for c in clocks}
    emitted = frozenset(k for k in state.emitted if k[: k.rindex("|") + 1] in current)
    return replace(state, clocks=clocks, emitted=emitted)


def _remember(state: RequestState, *event_ids: str) -> RequestState:
    return replace(state, seen=(*state.seen, *event_ids)[-SEEN_LIMIT:])


def _key(kind: SlaClock, cycle: int, mark: str) -> str:
    return f"{kind}|{cycle}|{mark}"


def _mark(state: RequestState, fact: SlaFact) -> RequestState:
    clock = state.clock(fact.clock)
    if clock is None or clock.cycle != fact.cycle:
        return state  # a late fact about a cycle that is over
    if isinstance(fact, SlaWarning):
        mark = str(fact.threshold_percent)
    elif isinstance(fact, SlaBreached):
        mark = "100"
    else:
        mark = fact.level
    return replace(state, emitted=state.emitted | {_key(fact.clock, fact.cycle, mark)})


def _fact(
    state: RequestState,
    clock: Clock,
    point: Threshold,
    *,
    version: PolicyVersion,
    calendar: Calendar,
    recorded_at: datetime,
) -> SlaFact:
    reached = clock.reach(point.work, calendar, state.province)
    target = version.policy(clock.policy_id).targets[clock.kind]
    due = clock.reach(target, calendar, state.province)
    if reached is None or due is None:
        raise ValueError(f"SLA facts come from running clocks only ({clock})")
    common: dict[str, Any] = {
        "event_id": derived_id(state.request_id, point.fact, clock.kind, clock.cycle, point.mark),
        "request_id": state.request_id,
        "occurred_at": from_us(reached),
        "recorded_at": recorded_at.astimezone(UTC),
        "source": SOURCE,
        "clock": clock.kind,
        "cycle": clock.cycle,
        "body_id": state.body_id,
        "province": state.province,
        "policy_id": clock.policy_id,
        "policy_version": state.policy_version,
    }
    if point.fact == "SlaWarning":
        assert point.percent is not None
        return SlaWarning(**common, threshold_percent=point.percent, due_at=from_us(due))
    if point.fact == "SlaBreached":
        return SlaBreached(**common, due_at=from_us(due))
    assert point.level is not None
    return RequestEscalated(**common, level=point.level)


# -- deadlines ------------------------------------------------------------------------------

_CLOCK_PREFIXES: tuple[tuple[SlaClock, str], ...] = (
    ("FIRST_RESPONSE", "first_response"),
    ("RESOLUTION", "resolution"),
    ("OPERATIONAL", "operational"),
)


def _moved(before: RequestState, after: RequestState) -> bool:
    """Whether a fact changed a clock or the request's holder (a new deadlines fact is due)."""
    return (before.clocks, before.province, before.body_id) != (
        after.clocks,
        after.province,
        after.body_id,
    )


def deadlines_fact(state: RequestState, cause: Event, ctx: Context) -> SlaDeadlinesSet:
    """Where the request's clocks stand after ``cause``: a :class:`SlaDeadlinesSet`.

    Its id derives from the cause's, so a fact decided again after a crash has the same id.
    """
    version = ctx.policies.get(state.policy_version)
    fields: dict[str, Any] = {}
    for kind, prefix in _CLOCK_PREFIXES:
        clock = state.clock(kind)
        target = version.policy(clock.policy_id).targets.get(kind) if clock else None
        due = clock.reach(target, ctx.calendar, state.province) if clock and target else None
        since = clock.running_since if clock else None
        fields |= {
            f"{prefix}_cycle": clock.cycle if clock else 0,
            f"{prefix}_policy_id": clock.policy_id if clock else "",
            f"{prefix}_target_us": target or 0,
            f"{prefix}_elapsed_us": clock.elapsed if clock else 0,
            f"{prefix}_running_since": None if since is None else from_us(since),
            f"{prefix}_stopped": bool(clock and clock.stopped),
            f"{prefix}_due_at": None if due is None else from_us(due),
        }
    return SlaDeadlinesSet(
        event_id=derived_id(state.request_id, "SlaDeadlinesSet", cause.event_id),
        request_id=state.request_id,
        occurred_at=cause.occurred_at,
        recorded_at=ctx.now.astimezone(UTC),
        source=SOURCE,
        causation_id=cause.event_id,
        province=state.province,
        body_id=state.body_id,
        body_kind=state.body_kind,
        status=state.status,
        policy_version=state.policy_version,
        **fields,
    )
