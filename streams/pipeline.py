"""What the worker does with each message, without Faust: bytes in, bytes out.

:class:`Pipeline` decodes and validates an intake message, folds it into the request's state with
:func:`samt124.domain.lifecycle.decide`, and says what to send: the event itself to its province's
topic, the referral samt124 derived, SLA facts to ``samt124.sla``, or the original bytes to the
dead-letter topic with the reason. A message on another intake partition than the one Kafka's
default partitioner gives its request id is first copied there, so that everything about a
request lives in one partition. :meth:`Pipeline.due` does the same for the SLA timer: the facts
that fell due, and the request's state with them marked as emitted. The Faust agent and timer
in :mod:`streams.app` only move these bytes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from samt124.contract import wire
from samt124.domain.calendar import Calendar, Closure, load_config
from samt124.domain.events import (
    DERIVED_EVENT_TYPES,
    SLA_EVENT_TYPES,
    Event,
    OfficeClosureAnnounced,
    SlaDeadlinesSet,
    event_type,
)
from samt124.domain.lifecycle import (
    Context,
    RequestState,
    closure_of,
    decide,
    due_sla_facts,
    next_due,
    refusal,
)
from samt124.domain.routing import ReferralRules, load_rules
from samt124.domain.sla import Policies, load_policies
from samt124.domain.validation import validate
from samt124.kafka.topics import Topics, partition_of
from samt124.settings import Settings
from streams.faults import Faults

Headers = list[tuple[str, bytes]]
MOVED_FROM = "moved-from"  # header of an intake message copied to its request's partition


@dataclass(frozen=True)
class Outgoing:
    topic: str
    key: bytes | None
    value: bytes
    headers: Headers
    partition: int | None = None  # None: the producer's partitioner (murmur2 of the key)


@dataclass(frozen=True)
class Where:
    """Where a message was read: kept in dead letters so an operator can find the original."""

    topic: str
    partition: int
    offset: int


@dataclass(frozen=True)
class Step:
    """The outcome of one message: the new state (``None``: unchanged) and what to publish."""

    state: RequestState | None = None
    outgoing: tuple[Outgoing, ...] = ()
    closure: Closure | None = None
    duplicate: bool = False
    dead_letter: str | None = None  # the reason, when the message went to the dead-letter topic
    event: Event | None = None
    moved_to: int | None = None  # the intake partition a misplaced message was copied to
    due: datetime | None = None  # when the new state's next SLA threshold falls due
    failure: bool = False  # a dead letter because handling the message raised
    facts: tuple[Event, ...] = ()  # the SLA facts in ``outgoing``, marked emitted in ``state``


@dataclass
class Pipeline:
    topics: Topics
    rules: ReferralRules
    policies: Policies
    calendar: Calendar
    partitions: int  # of the intake topic (and of every topic co-partitioned with it)
    faults: Faults | None = None  # the fault-injection test mode (off: None)

    @classmethod
    def load(cls, settings: Settings) -> Pipeline:
        """The pipeline with the rule files of the settings (or the ones samt124 ships)."""
        rules = load_rules(settings.referral_rules) if settings.referral_rules else load_rules()
        policies = (
            load_policies(settings.sla_policies) if settings.sla_policies else load_policies()
        )
        config = load_config(settings.calendars) if settings.calendars else load_config()
        topics = Topics(settings.topic_namespace)
        return cls(topics, rules, policies, Calendar(config), settings.partitions)

    def context(self, wall: datetime) -> Context:
        return Context(self.rules, self.policies, self.calendar, wall)

    # -- intake ------------------------------------------------------------------------------

    def on_intake(
        self,
        state: RequestState | bytes | None,
        key: bytes | None,
        value: bytes | None,
        headers: Headers,
        where: Where,
        wall: datetime,
    ) -> Step:
        """The outcome of one intake message; never raises.

        ``state`` is the request's state, or the bytes it is stored as (decoded here, so that
        a state that cannot be read is this message's failure, not the worker's). Whatever
        raises while the message is decoded, validated, decided, scheduled or encoded makes it
        a dead letter with the exception's type and text: the worker goes on with the next.
        """
        raw = value or b""
        try:
            return self._on_intake(state, key, raw, headers, where, wall)
        except Exception as error:
            reason = f"{type(error).__name__} while handling the message: {error}"
            return self._dead(key, raw, headers, where, wall, reason, error=error)

    def _on_intake(
        self,
        stored: RequestState | bytes | None,
        key: bytes | None,
        raw: bytes,
        headers: Headers,
        where: Where,
        wall: datetime,
    ) -> Step:
        try:
            event = wire.decode(raw)
        except wire.DecodeError as error:
            return self._dead(key, raw, headers, where, wall, error.reason)
        errors = validate(event, now=wall)
        if errors:
            reason = "invalid " + event_type(event) + ": " + "; ".join(map(str, errors))
            return self._dead(key, raw, headers, where, wall, reason)
        if event_type(event) in DERIVED_EVENT_TYPES:
            reason = f"{event_type(event)} is published by samt124 itself, not on intake"
            return self._dead(key, raw, headers, where, wall, reason)
        if key is not None and key != wire.key(event):
            reason = f"message key {key!r} is not the event's request_id {event.request_id!r}"
            return self._dead(key, raw, headers, where, wall, reason)
        home = partition_of(wire.key(event), self.partitions)
        if where.partition != home:
            return self._move(event, raw, headers, where, home)
        if self.faults is not None:
            self.faults.check_message(where.topic, where.partition, where.offset)
        if isinstance(event, OfficeClosureAnnounced):
            closure = closure_of(event)
            forward = Outgoing(self.topics.province(event.province), key, raw, headers)
            self.calendar = self.calendar.with_closure(closure)
            return Step(outgoing=(forward,), closure=closure, event=event)
        state = RequestState.from_bytes(stored) if isinstance(stored, bytes) else stored
        if state is not None and event.event_id not in state.seen:
            refused = refusal(state, event)  # events also arrive straight from Kafka
            if refused is not None:
                reason = f"refused for request {event.request_id!r}: {refused}"
                return self._dead(key, raw, headers, where, wall, reason)
        decision = decide(state, event, self.context(wall))
        if decision.state is None:
            reason = f"{event_type(event)} for unknown request {event.request_id!r}"
            return self._dead(key, raw, headers, where, wall, reason)
        if decision.duplicate:
            return Step(state=decision.state, duplicate=True, event=event)
        province = self.topics.province(decision.state.province)
        facts = tuple(f for f in decision.outputs if _is_sla(f))
        derived = [fact for fact in decision.outputs if not _is_sla(fact)]
        outgoing = (  # a referral before the event, where the clocks stand after it
            *(self._publish(f, province) for f in derived if not isinstance(f, SlaDeadlinesSet)),
            Outgoing(province, key, raw, headers),
            *(self._publish(f, province) for f in derived if isinstance(f, SlaDeadlinesSet)),
            *(self._publish(fact, province) for fact in facts),
        )
        due = self.next_due(decision.state)
        return Step(state=decision.state, outgoing=outgoing, event=event, due=due, facts=facts)

    def _publish(self, fact: Event, province_topic: str) -> Outgoing:
        topic = self.topics.sla if _is_sla(fact) else province_topic
        return Outgoing(topic, wire.key(fact), wire.encode(fact), wire.headers(fact))

    def _move(self, event: Event, raw: bytes, headers: Headers, where: Where, home: int) -> Step:
        """A message on another intake partition than its request's (published without a key,
        or by a client whose partitioner is not murmur2, such as librdkafka's default): copied
        to the request's partition, where it is handled like any other, so that a request's
        state, events and SLA facts all live in one partition."""
        origin = f"{where.topic}[{where.partition}]@{where.offset}".encode()
        moved = Outgoing(
            self.topics.intake,
            wire.key(event),
            raw,
            [*(h for h in headers if h[0] != MOVED_FROM), (MOVED_FROM, origin)],
            partition=home,
        )
        return Step(outgoing=(moved,), event=event, moved_to=home)

    def _dead(
        self,
        key: bytes | None,
        raw: bytes,
        headers: Headers,
        where: Where,
        wall: datetime,
        reason: str,
        *,
        error: Exception | None = None,
    ) -> Step:
        extra: Headers = [
            ("dlq-reason", reason.encode()),
            *([("dlq-error", type(error).__name__.encode())] if error is not None else []),
            ("dlq-topic", where.topic.encode()),
            ("dlq-partition", str(where.partition).encode()),
            ("dlq-offset", str(where.offset).encode()),
            ("dlq-at", wall.astimezone(UTC).isoformat().encode()),
        ]
        return Step(
            outgoing=(Outgoing(self.topics.dlq, key, raw, [*headers, *extra]),),
            dead_letter=reason,
            failure=error is not None,
        )

    # -- timers ------------------------------------------------------------------------------

    def due(self, state: RequestState, now: datetime, wall: datetime) -> Step:
        """The SLA facts due at ``now``, folded into the request's state, and when to look next.

        The new state (``None`` when nothing fell due) has the facts marked as emitted: the
        worker stores it once the facts are delivered, so a fact is published again only after a
        crash in between, with the same id (it collapses downstream).
        """
        facts = due_sla_facts(state, now, self.calendar, self.policies, recorded_at=wall)
        if not facts:
            return Step(due=self.next_due(state))
        context = self.context(wall)
        for fact in facts:
            state = decide(state, fact, context).state or state
        outgoing = tuple(self._publish(fact, self.topics.sla) for fact in facts)
        return Step(state=state, outgoing=outgoing, due=self.next_due(state), facts=facts)

    def next_due(self, state: RequestState) -> datetime | None:
        return next_due(state, self.calendar, self.policies)

    def with_closures(self, closures: Sequence[Closure]) -> None:
        """Adopt closures other workers recorded (idempotent)."""
        for closure in closures:
            known = self.calendar.closures.get(closure.province, ())
            if closure not in known:
                self.calendar = self.calendar.with_closure(closure)


def _is_sla(event: Event) -> bool:
    return event_type(event) in SLA_EVENT_TYPES
