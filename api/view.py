"""What the API reads: each request's state as the worker keeps it, and its submission.

The worker's request table is changelog-backed: every state it decides is written, as
``RequestState.to_bytes``, to the compacted topic ``<namespace>-worker-requests-changelog``,
keyed by the request id. :class:`Follower` reads that topic, the worker's announced office
closures (``<namespace>-worker-closures-changelog``, which move the queue's deadlines as they
move the worker's clocks) and, on the intake topic, the submissions (who submitted what) and the
actions (when a request last changed, and its notes) from the beginning, and keeps :class:`View`
up to date; the worker writes a state as soon as what caused it is delivered, so a referral is
here well within the 2 s a client may wait. A request the API itself has just published is in
the view at once, as ``submitted``, before the worker has routed it (read-your-write).
"""

from __future__ import annotations

import bisect
import gc
import heapq
import itertools
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from samt124.contract import wire
from samt124.domain.calendar import Closure
from samt124.domain.events import (
    ApplicantResponded,
    Event,
    LetterRegistered,
    RequestAssigned,
    RequestAwaitingApplicant,
    RequestClosed,
    RequestReopened,
    RequestResolved,
    RequestResponded,
    RequestSubmitted,
    RequestTransferred,
    SlaClock,
)
from samt124.domain.lifecycle import SEEN_LIMIT, RequestState, deadline
from samt124.domain.tehran_time import from_us, to_us
from samt124.kafka.topics import Topics
from samt124.settings import Settings
from streams.pipeline import Pipeline

log = logging.getLogger(__name__)
CLOSED = frozenset({"RESOLVED", "CLOSED"})
CLOCKS: tuple[SlaClock, ...] = ("FIRST_RESPONSE", "RESOLUTION", "OPERATIONAL")
HOUR_US = 3_600_000_000
# the states and rows of a large backlog are long-lived: left to the garbage collector, each full
# collection walks them all (a quarter to half a second with 100,000 open requests, every
# handler waiting meanwhile); frozen, it skips them (they are still freed when dropped)
FREEZE_EVERY = 20_000  # records taken
FACTS_KEPT = 16  # actions remembered per request, for its last update and status notes
# the actions on the intake a request's Open311 status shows (its submission shows already)
ACTIONS = frozenset(
    {
        "RequestAssigned",
        "RequestAwaitingApplicant",
        "ApplicantResponded",
        "RequestResponded",
        "RequestResolved",
        "RequestClosed",
        "RequestTransferred",
        "RequestReopened",
    }
)


@dataclass(frozen=True)
class Submission:
    request_id: str
    event_id: str
    owner: str  # the publishing system (the event's ``source``)
    service_code: str
    province: str
    description: str
    requested: datetime
    channel: str


@dataclass(frozen=True)
class Fact:
    """An action on a request, as its status shows it: when, and its note (if any)."""

    event_id: str
    occurred_at: datetime
    note: str | None


@dataclass(frozen=True)
class Row:
    """A request in a work queue: the parts a page shows and sorts by."""

    request_id: str
    body_id: str
    province: str
    category: str
    status: str
    submitted_at: datetime
    deadlines: dict[SlaClock, datetime]  # of the running clocks
    next_deadline: datetime | None


class View:
    """Request states and submissions, shared by the follower thread and the HTTP handlers.

    Only the follower writes states and closures; the handlers read. A page of a body's queue
    is a slice of that body's list of open requests, kept sorted by next deadline as each state
    arrives (its row computed then, and again only when what it depends on changes), so a page
    costs the page, not the body's whole backlog.
    """

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline
        self._lock = threading.Lock()
        self._states: dict[str, bytes] = {}
        self._marks: dict[str, tuple[str | None, Mark]] = {}  # holder (open only), mark
        # each open request's row, and its place in its holder's queue, oldest deadline first:
        # SLA facts folded back change the state but not its mark, so not its row
        self._rows: dict[str, Row] = {}
        self._places: dict[str, Place] = {}
        self._queues: dict[str, list[Place]] = {}  # body id -> places, sorted
        self._submissions: dict[str, Submission] = {}
        self._tokens: dict[str, str] = {}  # submission event id -> request id
        self._facts: dict[str, tuple[Fact, ...]] = {}  # request id -> its actions, latest last
        # the intake records this API published and has taken in already, not yet read back
        # (partition, offset), and how far the follower has read each intake partition
        self._ahead: set[tuple[int, int]] = set()
        self._intake_read: dict[int, int] = {}
        self.caught_up = threading.Event()

    def size(self) -> tuple[int, int]:
        """Requests whose state the view holds, and of them those open (in a queue)."""
        with self._lock:
            return len(self._states), len(self._rows)

    # -- writes ------------------------------------------------------------------------------

    def submitted(self, submission: Submission) -> None:
        with self._lock:
            self._submissions.setdefault(submission.request_id, submission)
            self._tokens[submission.event_id] = submission.request_id

    def acted(self, request_id: str, fact: Fact) -> None:
        """An action on the intake; it shows once the worker's state has taken it in."""
        with self._lock:
            known = self._facts.get(request_id, ())
            if all(f.event_id != fact.event_id for f in known):
                self._facts[request_id] = (*known, fact)[-FACTS_KEPT:]

    def published(self, partition: int, offset: int) -> None:
        """The intake record at ``partition``/``offset`` is one this API sent and has taken in
        (:meth:`submitted` or :meth:`acted`): the follower need not decode it again."""
        with self._lock:
            if offset >= self._intake_read.get(partition, 0):
                self._ahead.add((partition, offset))

    def read_back(self, partition: int, offset: int) -> bool:
        """The follower reads the intake record at ``partition``/``offset``: ``True`` if this
        API published it and has taken it in already."""
        with self._lock:
            self._intake_read[partition] = offset + 1
            if (partition, offset) in self._ahead:
                self._ahead.remove((partition, offset))
                return True
            return False

    def state(self, request_id: str, raw: bytes | None) -> None:
        summary = None if raw is None else _summary(raw)
        with self._lock:
            before = self._marks.get(request_id)
        holder = None if summary is None else summary[0]
        row = None
        if raw is not None and holder is not None and summary is not None:
            if before is None or before != summary or request_id not in self._rows:
                row = self._row(RequestState.from_bytes(raw))
            else:
                row = self._rows[request_id]
        with self._lock:
            if raw is None or summary is None:
                self._states.pop(request_id, None)
                self._marks.pop(request_id, None)
            else:
                self._states[request_id] = raw
                self._marks[request_id] = summary
            self._place(request_id, row)

    def closed(self, closure: Closure) -> None:
        """An announced office closure: the deadlines of the province's open requests move."""
        known = self.pipeline.calendar.closures.get(closure.province, ())
        if closure in known:
            return
        self.pipeline.with_closures([closure])
        with self._lock:
            touched = [
                (i, self._states[i])
                for i, r in self._rows.items()
                if r.province == closure.province
            ]
        for request_id, raw in touched:
            row = self._row(RequestState.from_bytes(raw))
            with self._lock:
                if self._states.get(request_id) is raw:
                    self._place(request_id, row)

    def _place(self, request_id: str, row: Row | None) -> None:
        """Put ``row`` in its holder's queue in place of the request's former row (lock held)."""
        old = self._places.pop(request_id, None)
        if old is not None:
            queue = self._queues[old[3]]
            at = bisect.bisect_left(queue, old)
            if at < len(queue) and queue[at] == old:
                del queue[at]
        if row is None:
            self._rows.pop(request_id, None)
            return
        self._rows[request_id] = row
        new: Place = (
            NEVER if row.next_deadline is None else to_us(row.next_deadline),
            to_us(row.submitted_at),
            request_id,
            row.body_id,
        )
        self._places[request_id] = new
        bisect.insort(self._queues.setdefault(row.body_id, []), new)

    def _row(self, state: RequestState) -> Row:
        p = self.pipeline
        deadlines: dict[SlaClock, datetime] = {}
        for kind in CLOCKS:
            clock = state.clock(kind)
            if clock is None or not clock.running:
                continue
            due = deadline(state, kind, p.calendar, p.policies)
            if due is not None:
                deadlines[kind] = due
        return Row(
            request_id=state.request_id,
            body_id=state.body_id,
            province=state.province,
            category=state.category,
            status=state.status,
            submitted_at=state.submitted_at,
            deadlines=deadlines,
            next_deadline=min(deadlines.values()) if deadlines else None,
        )

    # -- reads -------------------------------------------------------------------------------

    def get(self, request_id: str) -> tuple[RequestState | None, Submission | None]:
        with self._lock:
            raw = self._states.get(request_id)
            submission = self._submissions.get(request_id)
        return (None if raw is None else RequestState.from_bytes(raw)), submission

    def token(self, token: str) -> str | None:
        with self._lock:
            return self._tokens.get(token)

    def submission_ids(self, owner: str | None = None) -> list[str]:
        with self._lock:
            return [
                s.request_id
                for s in self._submissions.values()
                if owner is None or s.owner == owner
            ]

    def state_ids(self, body: str | None = None) -> list[str]:
        with self._lock:
            if body is None:
                return list(self._states)
            return [place[2] for place in self._queues.get(body, ())]

    def bodies(self) -> list[str]:
        with self._lock:
            return [body for body, queue in self._queues.items() if queue]

    def row(self, request_id: str) -> Row | None:
        """The queue row of an open request (``None``: unknown, resolved or closed)."""
        with self._lock:
            return self._rows.get(request_id)

    def queue(
        self,
        body: str | None,
        start: int,
        stop: int,
        keep: Callable[[Row], bool] | None = None,
    ) -> tuple[int, list[Row]]:
        """The open requests ``body`` holds (every body's: ``None``), oldest next deadline first
        (then the oldest submission), as ``(total, rows[start:stop])``; with ``keep``, only
        the rows it keeps, and the total of those. Without ``keep`` a page costs its size."""
        with self._lock:
            if body is not None:
                queues = [self._queues.get(body, [])]
            else:
                queues = [q for q in self._queues.values() if q]
            if keep is None:
                total = sum(len(q) for q in queues)
                merged = queues[0] if len(queues) == 1 else heapq.merge(*queues)
                if isinstance(merged, list):
                    places = merged[start:stop]
                else:
                    places = list(itertools.islice(merged, start, stop))
                return total, [self._rows[place[2]] for place in places]
            merged = queues[0] if len(queues) == 1 else list(heapq.merge(*queues))
            rows = [self._rows[place[2]] for place in merged]
        kept = [row for row in rows if keep(row)]
        return len(kept), kept[start:stop]

    def updated(
        self, state: RequestState | None, sub: Submission | None
    ) -> tuple[datetime | None, str | None]:
        """When the request last changed (its submission, or the latest action the worker took
        in), and the note of the latest action that has one (a response, a resolution...)."""
        request_id = state.request_id if state is not None else sub.request_id if sub else ""
        with self._lock:
            facts = self._facts.get(request_id, ())
        # an action the worker refused is not in its state's ``seen``; one that left ``seen``
        # (it keeps the latest ids only) was taken in long ago
        full = state is not None and len(state.seen) >= SEEN_LIMIT
        applied = [f for f in facts if state is not None and (full or f.event_id in state.seen)]
        if applied:
            notes = [f.note for f in applied if f.note]
            return applied[-1].occurred_at, (notes[-1] if notes else None)
        if state is not None:
            return state.submitted_at, None
        return (sub.requested if sub is not None else None), None

    def clocks(self, state: RequestState, now: datetime) -> list[dict[str, Any]]:
        """Each SLA clock of a request: working hours left before its target, or past it."""
        p = self.pipeline
        version = p.policies.get(state.policy_version)
        t = to_us(now)
        out: list[dict[str, Any]] = []
        for clock in state.clocks:
            target = version.policy(clock.policy_id).targets.get(clock.kind)
            elapsed = clock.elapsed_at(t, p.calendar, state.province)
            left = None if target is None else target - elapsed
            due = clock.reach(target, p.calendar, state.province) if target is not None else None
            out.append(
                {
                    "clock": clock.kind,
                    "cycle": clock.cycle,
                    "state": "running"
                    if clock.running
                    else ("stopped" if clock.stopped else "paused"),
                    "target_hours": None if target is None else round(target / HOUR_US, 2),
                    "worked_hours": round(elapsed / HOUR_US, 2),
                    "hours_left": None if left is None else round(max(left, 0) / HOUR_US, 2),
                    "hours_overdue": None if left is None else round(max(-left, 0) / HOUR_US, 2),
                    "due": None if due is None else from_us(due),
                }
            )
        return out


Mark = tuple[Any, ...]  # what a queue row depends on: status, holder, province, policy, clocks
# a request's place in its holder's queue: next deadline (µs), submission (µs), id, holder
Place = tuple[int, int, str, str]
NEVER = 2**63 - 1  # no running clock: after every deadline


def _summary(raw: bytes) -> tuple[str | None, Mark]:
    """The body holding an open request (``None`` once resolved or closed), and its mark."""
    data = json.loads(raw)
    body = data["body"]
    body_id = str(body["id"] if isinstance(body, dict) else body[0])
    clocks = tuple(
        tuple(sorted(c.items())) if isinstance(c, dict) else tuple(c) for c in data["clocks"]
    )
    mark = (data["status"], body_id, data["province"], data["policy"], clocks)
    return (None if data["status"] in CLOSED else body_id), mark


class Follower:
    """A thread that reads the worker's request states and announced closures, and the intake's
    submissions and actions, into a view.

    It shares the interpreter with the HTTP handlers: each record costs a JSON parse of the
    state (a state whose queue row is unchanged, as after an SLA fact, costs nothing more), or
    an Avro decode of a submission or an action; ``stats`` says how much time it took.
    """

    def __init__(self, settings: Settings, view: View) -> None:
        from streams.app import changelog_topic  # the name the worker's table writes to

        self.settings = settings
        self.view = view
        self.changelog = changelog_topic(settings)
        self.closures = self.changelog.removesuffix("-requests-changelog") + "-closures-changelog"
        self.intake = Topics(settings.topic_namespace).intake
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="samt124-api-follower", daemon=True)
        self.error: BaseException | None = None
        self.records = 0
        self.cpu_seconds = 0.0  # the follower thread's own CPU time, since it started

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def stats(self) -> dict[str, Any]:
        return {"records": self.records, "cpu_seconds": round(self.cpu_seconds, 3)}

    def _run(self) -> None:
        try:
            self._follow()
        except BaseException as error:  # reported by /health; the API answers 503 meanwhile
            self.error = error
            log.exception("the API stopped following the worker's states")

    def _follow(self) -> None:
        from kafka import KafkaConsumer, TopicPartition

        consumer = KafkaConsumer(
            **self.settings.kafka_client_options(),
            enable_auto_commit=False,
            # a fetch waits up to 50 ms for 64 KiB: under load, fewer and fuller fetches
            fetch_min_bytes=64 * 1024,
            fetch_max_wait_ms=50,
            max_partition_fetch_bytes=8 * 1024 * 1024,
            client_id="samt124-api",
        )
        try:
            partitions: list[Any] = []
            while not partitions and not self._stop.is_set():
                for topic in (self.changelog, self.closures, self.intake):
                    numbers = consumer.partitions_for_topic(topic) or set()
                    partitions += [TopicPartition(topic, n) for n in sorted(numbers)]
                if {tp.topic for tp in partitions} != {self.changelog, self.closures, self.intake}:
                    partitions = []  # the worker has not made its changelogs yet
                    self._stop.wait(1.0)
            if self._stop.is_set():  # stopped before the topics were there (a port in use, ^C)
                return
            consumer.assign(partitions)
            consumer.seek_to_beginning(*partitions)
            ends = consumer.end_offsets(partitions)
            frozen = 0
            while not self._stop.is_set():
                batches = consumer.poll(timeout_ms=200, max_records=2_000)
                for tp, records in batches.items():
                    for record in records:
                        self._take(tp.topic, record)
                    self.records += len(records)
                self.cpu_seconds = time.thread_time()  # all of it: fetching and parsing too
                if self.records - frozen >= FREEZE_EVERY:
                    gc.freeze()
                    frozen = self.records
                if not self.view.caught_up.is_set() and all(
                    consumer.position(tp) >= end for tp, end in ends.items()
                ):
                    self.view.caught_up.set()
        finally:
            consumer.close()

    def _take(self, topic: str, record: Any) -> None:
        if topic == self.changelog:
            if record.key is None:
                return
            self.view.state(json.loads(record.key), record.value)
            return
        if topic == self.closures:
            if record.value is None:
                return
            value = json.loads(record.value)
            self.view.closed(
                Closure(
                    value["province"],
                    date.fromisoformat(value["first_day"]),
                    date.fromisoformat(value["last_day"]),
                )
            )
            return
        if self.view.read_back(record.partition, record.offset):
            return  # published here, and taken in when the broker confirmed it
        headers = dict(record.headers or ())
        kind = headers.get("event-type", b"").decode("utf-8", "replace")
        if kind not in SUBMISSIONS and kind not in ACTIONS:
            return
        try:
            event = wire.decode(record.value)
        except wire.DecodeError:
            return  # the worker dead-letters it
        if isinstance(event, RequestSubmitted | LetterRegistered):
            self.view.submitted(submission_of(event))
        elif type(event).__name__ in ACTIONS:
            self.view.acted(event.request_id, fact_of(event))


SUBMISSIONS = frozenset({"RequestSubmitted", "LetterRegistered"})


def fact_of(event: Event) -> Fact:
    """An action as the request's status shows it; an assignment's person is not shown."""
    note: str | None = None
    if isinstance(event, RequestResponded):
        note = event.message
    elif isinstance(event, RequestResolved):
        note = event.resolution_note
    elif isinstance(event, RequestAwaitingApplicant | RequestTransferred | RequestReopened):
        note = event.reason
    elif isinstance(event, ApplicantResponded):
        note = event.note
    elif not isinstance(event, RequestAssigned | RequestClosed):
        raise TypeError(f"{type(event).__name__} is not an action on a request")
    return Fact(event.event_id, event.occurred_at.astimezone(UTC), note)


def submission_of(event: RequestSubmitted | LetterRegistered) -> Submission:
    return Submission(
        request_id=event.request_id,
        event_id=event.event_id,
        owner=event.source,
        service_code=event.category,
        province=event.province,
        description=event.body,
        requested=event.occurred_at.astimezone(UTC),
        channel=event.channel if isinstance(event, RequestSubmitted) else "SECRETARIAT",
    )
