"""What the API reads: each request's state as the worker keeps it, and its submission.

The worker's request table is changelog-backed: every state it decides is written, as
``RequestState.to_bytes``, to the compacted topic ``<namespace>-worker-requests-changelog``,
keyed by the request id. :class:`Follower` reads that topic (and the submissions on the intake
topic, for who submitted what) from the beginning and keeps :class:`View` up to date; the
worker writes a state as soon as what caused it is delivered, so a referral is here well
within the 2 s a client may wait. A request the API itself has just published is in the view at
once, as ``submitted``, before the worker has routed it (read-your-write).
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from samt124.contract import wire
from samt124.domain.events import LetterRegistered, RequestSubmitted, SlaClock
from samt124.domain.lifecycle import RequestState, deadline
from samt124.domain.tehran_time import from_us, to_us
from samt124.kafka.topics import Topics
from samt124.settings import Settings
from streams.pipeline import Pipeline

log = logging.getLogger(__name__)
CLOSED = frozenset({"RESOLVED", "CLOSED"})
CLOCKS: tuple[SlaClock, ...] = ("FIRST_RESPONSE", "RESOLUTION", "OPERATIONAL")
HOUR_US = 3_600_000_000


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
    """Request states and submissions, shared by the follower thread and the HTTP handlers."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline
        self._lock = threading.Lock()
        self._states: dict[str, bytes] = {}
        self._marks: dict[str, tuple[str | None, Mark]] = {}  # holder (open only), mark
        # computed on demand, kept while the state's mark is the same: SLA facts folded back
        # change the state but not its deadlines
        self._rows: dict[str, tuple[Mark, Row]] = {}
        self._held: dict[str, set[str]] = {}  # body id -> ids of the open requests it holds
        self._submissions: dict[str, Submission] = {}
        self._tokens: dict[str, str] = {}  # submission event id -> request id
        self.caught_up = threading.Event()

    # -- writes ------------------------------------------------------------------------------

    def submitted(self, submission: Submission) -> None:
        with self._lock:
            self._submissions.setdefault(submission.request_id, submission)
            self._tokens[submission.event_id] = submission.request_id

    def state(self, request_id: str, raw: bytes | None) -> None:
        summary = None if raw is None else _summary(raw)
        with self._lock:
            before = self._marks.pop(request_id, None)
            if before is not None and before[0] is not None:
                self._held.get(before[0], set()).discard(request_id)
            if raw is None or summary is None:
                self._states.pop(request_id, None)
                self._rows.pop(request_id, None)
                return
            self._states[request_id] = raw
            self._marks[request_id] = summary
            if summary[0] is not None:
                self._held.setdefault(summary[0], set()).add(request_id)

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
            return list(self._held.get(body, ()))

    def held_ids(self, bodies: list[str] | None) -> list[str]:
        with self._lock:
            if bodies is None:
                return [i for ids in self._held.values() for i in ids]
            return [i for b in bodies for i in self._held.get(b, ())]

    def bodies(self) -> list[str]:
        with self._lock:
            return list(self._held)

    def row(self, request_id: str) -> Row | None:
        with self._lock:
            cached = self._rows.get(request_id)
            raw = self._states.get(request_id)
            summary = self._marks.get(request_id)
        if raw is None or summary is None:
            return None
        mark = summary[1]
        if cached is not None and cached[0] == mark:
            return cached[1]
        state = RequestState.from_bytes(raw)
        p = self.pipeline
        deadlines: dict[SlaClock, datetime] = {}
        for kind in CLOCKS:
            clock = state.clock(kind)
            if clock is None or not clock.running:
                continue
            due = deadline(state, kind, p.calendar, p.policies)
            if due is not None:
                deadlines[kind] = due
        row = Row(
            request_id=state.request_id,
            body_id=state.body_id,
            province=state.province,
            category=state.category,
            status=state.status,
            submitted_at=state.submitted_at,
            deadlines=deadlines,
            next_deadline=min(deadlines.values()) if deadlines else None,
        )
        with self._lock:
            self._rows[request_id] = (mark, row)
        return row

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
    """A thread that reads the worker's request states and the intake's submissions into a view."""

    def __init__(self, settings: Settings, view: View) -> None:
        from streams.app import changelog_topic  # the name the worker's table writes to

        self.settings = settings
        self.view = view
        self.changelog = changelog_topic(settings)
        self.intake = Topics(settings.topic_namespace).intake
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="samt124-api-follower", daemon=True)
        self.error: BaseException | None = None

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

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
            fetch_max_wait_ms=50,
            max_partition_fetch_bytes=8 * 1024 * 1024,
            client_id="samt124-api",
        )
        try:
            partitions: list[Any] = []
            while not partitions and not self._stop.is_set():
                for topic in (self.changelog, self.intake):
                    numbers = consumer.partitions_for_topic(topic) or set()
                    partitions += [TopicPartition(topic, n) for n in sorted(numbers)]
                if not partitions or not any(tp.topic == self.changelog for tp in partitions):
                    partitions = []  # the worker has not made its changelog yet
                    self._stop.wait(1.0)
            consumer.assign(partitions)
            consumer.seek_to_beginning(*partitions)
            ends = consumer.end_offsets(partitions)
            while not self._stop.is_set():
                batches = consumer.poll(timeout_ms=200, max_records=5_000)
                for tp, records in batches.items():
                    for record in records:
                        self._take(tp.topic, record)
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
        headers = dict(record.headers or ())
        if headers.get("event-type") not in (b"RequestSubmitted", b"LetterRegistered"):
            return
        try:
            event = wire.decode(record.value)
        except wire.DecodeError:
            return  # the worker dead-letters it
        if isinstance(event, RequestSubmitted | LetterRegistered):
            self.view.submitted(submission_of(event))


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
