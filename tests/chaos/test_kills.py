"""The whole pipeline under faults: worker, sink and broker SIGKILLed, ClickHouse away for 30 s.

One end-to-end run on a broker and a ClickHouse server of the test's own. Simulated national
traffic is published through the Publisher API (an unconfirmed chunk is published again); the
worker and the sink run as ``samt124`` subprocesses. At seeded random points of the run (logged,
and in the failure message) the worker, the broker and the sink are killed with SIGKILL and
restarted after a short pause, and the ClickHouse server is stopped for 30 s and started again.

Afterwards, what a user would check: every published event is in ClickHouse exactly once (through
``events_unique`` and as ``uniqExact(event_id)`` of the raw table), with one derived referral per
opened request and every SLA fact of the SLA topic; every published event is on its province's
topic; every SLA breach was emitted once per request, clock and cycle.

The traffic is valid, so nothing may reach the dead-letter topic: a worker that came back without
a request's state would dead-letter that request's later events ("for unknown request").

``SAMT124_CHAOS_EVENTS`` sets the number of events (default 100 000; about four minutes on two
cores). ``SAMT124_CHAOS_SEED`` sets the seed of the fault schedule (default 11, so that a failure
can be replayed; it is printed at the start).
"""

from __future__ import annotations

import os
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from consumers.sink.loader import group_id as sink_group
from samt124.contract import wire
from samt124.domain.events import (
    Event,
    LetterRegistered,
    RequestReferred,
    RequestSubmitted,
    SlaBreached,
    SlaDeadlinesSet,
)
from samt124.kafka.admin import ensure_topics
from samt124.kafka.reader import read_topics
from samt124.kafka.topics import Topics
from samt124.settings import Settings
from streams.app import group_id as worker_group
from tests.chaos.harness import (
    OwnServices,
    Publishing,
    end_offsets,
    group_lag,
    province_topics,
    recent_traffic,
    rows,
    say,
    scalar,
    stopwatch,
    wait_until,
)
from tests.integration.pipeline import Process, start

EVENTS = int(os.environ.get("SAMT124_CHAOS_EVENTS", "100000"))
SEED = int(os.environ.get("SAMT124_CHAOS_SEED", "11"))
OUTAGE_SECONDS = 30.0


@dataclass
class Watch:
    """What the fault loop waits for after a fault, without blocking the other faults."""

    ready: Callable[[], bool]
    then: Callable[[], list[Watch]]  # runs once ready; may ask to watch for something else


@dataclass
class Fault:
    name: str
    at: float  # the fraction of the run's progress (see ``progress``) that triggers it
    progress: Callable[[], float | None]
    act: Callable[[random.Random], list[Watch]]
    done: bool = False


class Run:
    """The pipeline's processes for one run, restartable, with the figures of each fault."""

    def __init__(self, own: OwnServices, settings: Settings, logs: Path) -> None:
        self.own = own
        self.settings = settings
        self.logs = logs
        self.topics = Topics(settings.topic_namespace)
        self.starts: Counter[str] = Counter()
        self.worker = self._start("worker")
        self.sink = self._start("sink")
        self.figures: dict[str, dict[str, float]] = {}

    def _start(self, what: str) -> Process:
        self.starts[what] += 1
        return start(self.settings, what, log=self.logs / f"{what}-{self.starts[what]}.log")

    def routed(self) -> int | None:
        return end_offsets(self.settings, province_topics(self.settings))

    def stored(self) -> int | None:
        try:
            return scalar(self.settings, "SELECT count() FROM {db}.events")
        except Exception:
            return None

    def _recovered(self, fault: str, measure: Callable[[], int | None], since: int | None) -> Watch:
        """Watch for ``measure`` to pass ``since``; record how long that took as recovery_s."""
        started = time.monotonic()

        def record() -> list[Watch]:
            self.figures[fault]["recovery_s"] = round(time.monotonic() - started, 1)
            say(f"{fault}: recovered {self.figures[fault]}")
            return []

        return Watch(lambda: (measure() or 0) > (since or 0), record)

    def _pause(self, rng: random.Random) -> float:
        pause = round(rng.uniform(1.0, 4.0), 1)
        time.sleep(pause)
        return pause

    def kill_worker(self, rng: random.Random) -> list[Watch]:
        assert self.worker.popen.poll() is None, "the worker exited by itself:\n" + self.tail()
        before = self.routed()
        self.worker.kill()
        pause = self._pause(rng)
        self.worker = self._start("worker")
        self.figures["worker"].update(routed_before=float(before or 0), pause_s=pause)
        return [self._recovered("worker", self.routed, self.routed())]

    def kill_sink(self, rng: random.Random) -> list[Watch]:
        assert self.sink.popen.poll() is None, "the sink exited by itself:\n" + self.tail()
        before = self.stored()
        self.sink.kill()
        pause = self._pause(rng)
        self.sink = self._start("sink")
        self.figures["sink"].update(stored_before=float(before or 0), pause_s=pause)
        return [self._recovered("sink", self.stored, self.stored())]

    def kill_broker(self, rng: random.Random) -> list[Watch]:
        before = self.routed()
        self.own.kafka_kill()
        pause = self._pause(rng)
        restart = self.own.kafka_up()
        self.figures["broker"].update(
            routed_before=float(before or 0), pause_s=pause, restart_s=round(restart, 1)
        )
        return [self._recovered("broker", self.routed, before)]

    def clickhouse_outage(self, rng: random.Random) -> list[Watch]:
        before = self.stored()
        self.own.clickhouse_down()
        back_at = time.monotonic() + OUTAGE_SECONDS

        def back() -> list[Watch]:
            assert self.sink.popen.poll() is None, "the sink gave up while ClickHouse was away"
            restart = self.own.clickhouse_up()
            self.figures["clickhouse"].update(
                stored_before=float(before or 0), outage_s=OUTAGE_SECONDS, restart_s=restart
            )
            return [self._recovered("clickhouse", self.stored, before)]

        return [Watch(lambda: time.monotonic() >= back_at, back)]

    def tail(self) -> str:
        texts = []
        for log in sorted(self.logs.glob("*.log")):
            lines = log.read_text(errors="replace").splitlines()[-15:]
            texts.append(f"--- {log.name}\n" + "\n".join(lines))
        return "\n".join(texts)


@pytest.mark.timeout(900)
def test_every_event_stored_once_through_kills_of_worker_sink_broker_and_clickhouse_outage(
    tmp_path: Path,
) -> None:
    figures: dict[str, float] = {}
    rng = random.Random(SEED)
    say(f"seed {SEED}, {EVENTS} events")
    own = OwnServices.create(tmp_path / "services", namespace="chaos", partitions=4)
    try:
        with stopwatch("services_up_s", figures):
            own.kafka_up()
            own.clickhouse_up()
            settings = own.analytics()
            ensure_topics(settings)
        with stopwatch("simulate_s", figures):
            events = recent_traffic(124, EVENTS, datetime.now(UTC))
        run = Run(own, settings, tmp_path / "logs")
        publishing = Publishing(settings, events)
        total = len(events)
        schedule = [
            Fault(
                "broker", rng.uniform(0.3, 0.7), lambda: publishing.sent / total, run.kill_broker
            ),
            Fault(
                "worker",
                rng.uniform(0.2, 0.5),
                lambda: (run.routed() or 0) / total,
                run.kill_worker,
            ),
            Fault(
                "sink", rng.uniform(0.3, 0.5), lambda: (run.stored() or 0) / total, run.kill_sink
            ),
            Fault(
                "clickhouse",
                rng.uniform(0.6, 0.8),
                lambda: (run.stored() or 0) / total,
                run.clickhouse_outage,
            ),
        ]
        say("fault schedule: " + ", ".join(f"{f.name} at {f.at:.2f}" for f in schedule))
        started = time.monotonic()
        publishing.start()
        try:
            with stopwatch("faults_s", figures):
                _inject(schedule, run, rng, started)
            publishing.join(600)
            figures["published_s"] = round((publishing.finished_at or 0) - started, 1)
            with stopwatch("worker_drain_s", figures):
                wait_until(
                    lambda: group_lag(settings, worker_group(settings), [run.topics.intake]) == 0,
                    900,
                    "the worker to route everything published",
                )
                assert run.worker.popen.poll() is None, "the worker exited:\n" + run.tail()
                assert run.worker.stop() == 0, "the worker did not stop cleanly:\n" + run.tail()
            with stopwatch("sink_drain_s", figures):
                wanted = [*province_topics(settings), run.topics.sla]
                wait_until(
                    lambda: group_lag(settings, sink_group(settings), wanted) == 0,
                    600,
                    "the sink to store everything",
                )
                assert run.sink.popen.poll() is None, "the sink exited:\n" + run.tail()
                run.sink.stop()
        finally:
            run.worker.stop()
            run.sink.stop()
        figures["run_s"] = round(time.monotonic() - started, 1)
        with stopwatch("read_back_s", figures):
            _check(settings, run, events, publishing, figures)
    finally:
        own.down()
    say(f"figures: {figures}")


def _inject(schedule: list[Fault], run: Run, rng: random.Random, started: float) -> None:
    """Trigger each fault at its point; watch for recoveries meanwhile, so faults can overlap."""
    deadline = time.monotonic() + 600
    watches: list[Watch] = []
    while watches or not all(f.done for f in schedule):
        assert time.monotonic() < deadline, f"faults or recoveries pending: {run.figures}"
        for name, process in (("worker", run.worker), ("sink", run.sink)):
            code = process.popen.poll()
            assert code is None, f"the {name} exited ({code}) by itself:\n" + run.tail()
        for watch in [w for w in watches if w.ready()]:
            watches.remove(watch)
            watches.extend(watch.then())
        for fault in schedule:
            if fault.done:
                continue
            progress = fault.progress()
            if progress is not None and progress >= fault.at:
                at = time.monotonic() - started
                say(f"{fault.name}: fault at {at:.1f} s (progress {progress:.2f})")
                run.figures[fault.name] = {"at_s": round(at, 1)}
                watches.extend(fault.act(rng))
                fault.done = True
        time.sleep(0.5)


def _check(
    settings: Settings,
    run: Run,
    events: list[Event],
    publishing: Publishing,
    figures: dict[str, float],
) -> None:
    topics = run.topics
    published = {e.event_id: e for e in events}
    opened = {e.request_id for e in events if isinstance(e, RequestSubmitted | LetterRegistered)}

    province = read_topics(settings, province_topics(settings))
    on_province: dict[str, tuple[str, Event]] = {}
    for record in province:
        event = wire.decode(record.value)
        on_province[event.event_id] = (record.topic, event)
    dead = read_topics(settings, [topics.dlq])
    reasons = Counter(record.headers.get("dlq-reason", b"").decode() for record in dead)
    assert not dead, f"{len(dead)} dead letters from valid traffic: {reasons.most_common(5)}"
    sla = [wire.decode(r.value) for r in read_topics(settings, [topics.sla])]
    sla_ids = {e.event_id for e in sla}

    figures.update(
        events=len(published),
        province_messages=len(province),
        province_distinct=len(on_province),
        dead_letters=len(dead),
        sla_messages=len(sla),
        sla_distinct=len(sla_ids),
        publish_retries=publishing.retries,
    )
    say(f"faults: {run.figures}")
    say(f"counts: {figures}")

    # no message lost: every published event on its province's topic
    lost = [i for i in published if i not in on_province]
    assert lost == [], f"{len(lost)} published events on no topic, e.g. {lost[:5]}"
    misrouted = [
        (e.event_id, e.province, on_province[e.event_id][0])
        for e in events
        if isinstance(e, RequestSubmitted | LetterRegistered)
        and e.event_id in on_province
        and on_province[e.event_id][0] != topics.province(e.province)
    ]
    assert misrouted == [], misrouted[:5]

    # one derived referral per opened request
    referrals = [e for _, e in on_province.values() if isinstance(e, RequestReferred)]
    assert len(referrals) == len(opened)
    assert {r.request_id for r in referrals} == opened

    # every SLA breach emitted once per request, clock and cycle
    breaches = {e.event_id: e for e in sla if isinstance(e, SlaBreached)}
    per_clock = Counter((b.request_id, b.clock, b.cycle) for b in breaches.values())
    twice = [k for k, n in per_clock.items() if n > 1]
    assert twice == [], f"{len(twice)} breaches emitted more than once, e.g. {twice[:5]}"
    figures["breaches"] = len(breaches)

    # ClickHouse: each event exactly once
    expected = set(published) | {r.event_id for r in referrals} | sla_ids
    # the worker's deadlines facts go to sla_deadlines, not to events
    deadlines = {i for i, (_, e) in on_province.items() if isinstance(e, SlaDeadlinesSet)}
    strangers = set(on_province) - set(published) - {r.event_id for r in referrals} - deadlines
    assert strangers == set(), f"events no one published on province topics: {strangers}"
    unique = scalar(settings, "SELECT count() FROM {db}.events_unique")
    distinct = scalar(settings, "SELECT uniqExact(event_id) FROM {db}.events")
    stored = {row[0] for row in rows(settings, "SELECT DISTINCT event_id FROM {db}.events_unique")}
    figures.update(
        clickhouse_unique=unique, clickhouse_raw=scalar(settings, "SELECT count() FROM {db}.events")
    )
    missing = expected - stored
    extra = stored - expected
    assert missing == set(), f"{len(missing)} events not in ClickHouse, e.g. {sorted(missing)[:5]}"
    assert extra == set(), f"{len(extra)} unexpected events in ClickHouse: {sorted(extra)[:5]}"
    assert unique == distinct == len(expected)
    assert scalar(settings, "SELECT count() FROM {db}.sink_errors") == 0

    sla_unique = scalar(settings, "SELECT count() FROM {db}.sla_events_unique")
    assert sla_unique == len(sla_ids)
    stored_twice = rows(
        settings,
        "SELECT request_id, clock, cycle, count() AS n FROM {db}.sla_events_unique "
        "WHERE event_type = 'SlaBreached' GROUP BY request_id, clock, cycle HAVING n > 1 LIMIT 5",
    )
    assert stored_twice == []
    assert scalar(
        settings, "SELECT count() FROM {db}.sla_events_unique WHERE event_type = 'SlaBreached'"
    ) == len(breaches)
