"""What one refresh reads: the reports from ClickHouse, the consumer lag and the dead letters.

ClickHouse is read only through :func:`consumers.analytics.reports.run` (the functions behind
``samt124 report``) plus one listing of the oldest overdue requests, judged by the backlog's
own rule (:func:`consumers.analytics.reports.open_at`). A session is opened per
refresh and closed after it, so an embedded (chdb) directory stays free for the sink between
refreshes. Every statement a refresh sends is counted (:class:`Counted`): the refresh cost.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from consumers.analytics import reports
from consumers.clickhouse.engine import Engine, Row, opened, quote
from dashboard import figures
from samt124.domain.tehran_time import US_PER_HOUR, from_us, jalali
from samt124.settings import Settings

log = logging.getLogger(__name__)

OLDEST = 10  # overdue requests listed
LAG_WINDOW = 30.0  # seconds over which a partition's lag status is judged
KAFKA_RETRY_SECONDS = 30.0  # after a failed Kafka reading, wait this long before the next
DEAD_LETTER_REASON_CHARS = 80  # a reason read from Kafka is grouped by what precedes its detail


class Counted:
    """An engine for one refresh: it counts the statements it sends, and sends an identical
    statement once (the reports that need the business calendar each ask for the closures)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._answers: dict[str, tuple[list[str], list[Row]]] = {}
        self.queries = 0
        self.label = ""  # what the next statements are for (the report's name)
        self.timings: list[tuple[str, float]] = []  # (label, seconds) per statement sent

    @property
    def database(self) -> str:
        return self._engine.database

    @property
    def version(self) -> tuple[int, ...]:
        return self._engine.version

    def execute(self, sql: str) -> None:
        self.queries += 1
        self._engine.execute(sql)

    def query(self, sql: str) -> tuple[list[str], list[Row]]:
        if sql not in self._answers:
            self.queries += 1
            started = time.perf_counter()
            self._answers[sql] = self._engine.query(sql)
            self.timings.append((self.label, time.perf_counter() - started))
        columns, rows = self._answers[sql]
        return list(columns), list(rows)

    def insert(self, *args: Any, **kwargs: Any) -> None:
        raise PermissionError("the dashboard only reads")

    def close(self) -> None:
        self._engine.close()


def oldest_overdue(
    engine: Engine, params: reports.ReportParams, limit: int = OLDEST
) -> list[dict[str, Any]]:
    """The open requests longest past a deadline, with their holder and which clock: the same
    judgement as ``samt124 report backlog`` (:func:`consumers.analytics.reports.open_at`)."""
    found = []
    for request in reports.open_at(engine, params):
        past = [
            (due, name, over)
            for name, over in request.past.items()
            if over is not None and (due := request.clocks[name].deadline_us) is not None
        ]
        if not past:
            continue
        due, clock, (working, on_clock) = min(past)
        found.append((due, request.request_id, clock, request, working, on_clock))
    found.sort(key=lambda item: (item[0], item[1]))
    return [
        {
            "request_id": request_id,
            "province": request.province,
            **figures.province_names(request.province),
            "holder": request.body_id,
            "clock": clock,
            "due": figures.Moment.of(from_us(due)).__dict__,
            "overdue_hours": round(on_clock / US_PER_HOUR, 1),
            "overdue_working_hours": round(working / US_PER_HOUR, 1),
        }
        for due, request_id, clock, request, working, on_clock in found[:limit]
    ]


def table_params(now: datetime) -> dict[str, tuple[str, reports.ReportParams]]:
    """Each table behind the figures: the report and its parameters, for the instant ``now``."""
    params = reports.ReportParams(as_of=now)
    return {
        "backlog": ("backlog", params),
        "breaches_today": ("heatmap", replace(params, since=figures.today_start(now))),
        "breaches_week": ("heatmap", replace(params, since=figures.week_start(now))),
        "sla": ("sla", params),
        "sla_alborz": ("sla", replace(params, by="body", provinces=(reports.ALBORZ,))),
        "volume": ("volume", params),
    }


def read_tables(engine: Counted, now: datetime) -> dict[str, figures.Table]:
    """The report tables behind the figures, for the instant ``now``."""
    tables = {}
    for key, (name, params) in table_params(now).items():
        engine.label = key
        tables[key] = reports.run(engine, name, params)
    return tables


def dead_letter_table(engine: Engine) -> list[tuple[str, int]] | None:
    """Dead letters by reason from the ``dead_letters`` table; None when there is none."""
    db = engine.database
    _, columns = engine.query(
        f"SELECT name FROM system.columns WHERE database = {quote(db)} AND table = 'dead_letters'"
    )
    names = {str(name) for (name,) in columns}
    if not names:
        return None
    reason = "reason_kind" if "reason_kind" in names else "reason"
    place = "topic, partition, offset" if {"topic", "partition", "offset"} <= names else "*"
    _, rows = engine.query(
        f"SELECT {reason}, uniqExact({place}) FROM {db}.dead_letters "
        f"GROUP BY {reason} ORDER BY {reason}"
    )
    return [(str(kind), int(count)) for kind, count in rows]


def reason_kind(reason: str) -> str:
    """A dead-letter reason without its detail (``invalid RequestSubmitted``, not the field)."""
    head = " ".join(reason.split(":", 1)[0].split())
    return head[:DEAD_LETTER_REASON_CHARS] or "unknown"


class Kafka:
    """The dashboard's Kafka side: consumer lag (sliding window) and, while ClickHouse has no
    ``dead_letters`` table, the dead-letter topic counted by reason (read on from where the last
    refresh stopped)."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._reader: Any = None
        self._monitor: Any = None
        self._consumer: Any = None
        self._reasons: Counter[str] = Counter()
        self._failed_at = 0.0
        self.error: str | None = None

    def _available(self) -> bool:
        return time.monotonic() - self._failed_at >= KAFKA_RETRY_SECONDS

    def _failed(self, error: Exception) -> None:
        from samt124.kafka import trouble

        self._failed_at = time.monotonic()
        self.error = f"Kafka at {self._settings.bootstrap}: {trouble.explain(error)}"
        log.warning("%s", self.error)
        self.close()

    def lag(self) -> list[figures.LagGroup] | None:
        from samt124 import reach

        if not self._available():
            return None
        try:
            if self._monitor is None:
                from consumers.lag.reader import LagReader, Monitor

                reach.kafka(self._settings)
                self._reader = LagReader(self._settings)
                prefix = f"{self._settings.topic_namespace}-"
                self._monitor = Monitor(self._reader, window=LAG_WINDOW, prefix=prefix)
            found = self._monitor.sample()
        except Exception as error:
            self._failed(error)
            return None
        self.error = None
        return [
            figures.LagGroup(r.group, r.status.name, r.sum_lag, r.max_lag_seconds) for r in found
        ]

    def dead_letters(self) -> list[tuple[str, int]] | None:
        """The dead-letter topic by reason so far; None when Kafka could not be read."""
        if not self._available():
            return None
        try:
            if self._consumer is None:
                from kafka import KafkaConsumer, TopicPartition

                from samt124.kafka.topics import Topics

                topic = Topics(self._settings.topic_namespace).dlq
                self._consumer = KafkaConsumer(
                    **self._settings.kafka_client_options(), enable_auto_commit=False
                )
                numbers = self._consumer.partitions_for_topic(topic) or set()
                partitions = [TopicPartition(topic, n) for n in sorted(numbers)]
                self._consumer.assign(partitions)
                self._consumer.seek_to_beginning(*partitions)
                self._reasons = Counter()
            self._read_dead_letters()
        except Exception as error:
            self._failed(error)
            return None
        return sorted(self._reasons.items())

    def _read_dead_letters(self) -> None:
        consumer = self._consumer
        assigned = consumer.assignment()
        if not assigned:
            return
        ends = consumer.end_offsets(list(assigned))
        while any(consumer.position(tp) < ends[tp] for tp in assigned):
            batches = consumer.poll(timeout_ms=1000, max_records=5000)
            if not batches:
                break
            for records in batches.values():
                for record in records:
                    headers = dict(record.headers or ())
                    reason = headers.get("dlq-reason", b"").decode("utf-8", "replace")
                    self._reasons[reason_kind(reason)] += 1

    def close(self) -> None:
        for client in (self._reader, self._consumer):
            if client is not None:
                with contextlib.suppress(Exception):
                    client.close()
        self._reader = self._monitor = self._consumer = None


class Snapshots:
    """The latest snapshot, read again ``every`` seconds after the last read ended.

    Viewers get the latest snapshot at once and share it, so ClickHouse does one refresh per
    period however many pages are open, and never two at a time however slow a refresh is.
    A refresh that fails keeps the last snapshot, with ``problem`` saying why.
    """

    def __init__(self, settings: Settings, *, every: float, kafka: bool = True) -> None:
        self._settings = settings
        self._every = every
        self._kafka = Kafka(settings) if kafka else None
        self._changed = threading.Condition()
        self._last: dict[str, Any] | None = None
        self._error: Exception | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def first(self) -> dict[str, Any]:
        """Read one snapshot now (raises what the read raises); later ones come by :meth:`start`."""
        snapshot = self.read(datetime.now(UTC))
        with self._changed:
            self._last, self._error = snapshot, None
            self._changed.notify_all()
        return snapshot

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="dashboard-refresh", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self._every):
            try:
                snapshot = self.read(datetime.now(UTC))
            except Exception as error:  # ClickHouse away: keep the last figures, say why
                log.warning("dashboard refresh failed: %s", error)
                with self._changed:
                    self._error = error
                continue
            with self._changed:
                self._last, self._error = snapshot, None
                self._changed.notify_all()

    def get(self) -> dict[str, Any]:
        """The latest snapshot (``problem`` set when the last refresh failed)."""
        with self._changed:
            if self._last is None:
                if self._error is not None:
                    raise self._error
                self._changed.wait(timeout=120)
            if self._last is None:
                raise RuntimeError("no snapshot read yet")
            if self._error is not None:
                return {**self._last, "problem": str(self._error)}
            return self._last

    def read(self, now: datetime) -> dict[str, Any]:
        """One refresh: the reports, the oldest overdue, the lag and the dead letters."""
        started = time.perf_counter()
        with opened(self._settings.clickhouse, readonly=True, lock_timeout=60) as raw:
            engine = Counted(raw)
            tables = read_tables(engine, now)
            engine.label = "oldest_overdue"
            oldest = oldest_overdue(engine, reports.ReportParams(as_of=now))
            engine.label = "dead_letters"
            table = dead_letter_table(engine)
            queries = engine.queries
        clickhouse_seconds = time.perf_counter() - started
        groups = self._kafka.lag() if self._kafka else None
        if table is not None:
            dead = figures.dead_letters("table", table)
        else:
            counted = self._kafka.dead_letters() if self._kafka else None
            dead = figures.dead_letters("kafka", counted)
        error = self._kafka.error if self._kafka else "not read"
        day = jalali(now)
        week = reports.week_label(day.year, day.week, reports.ReportParams())
        return figures.snapshot(
            now=now,
            tables=tables,
            oldest=oldest,
            lag_figures=figures.lag(groups, error),
            dead=dead,
            week_label=week,
            queries=queries,
            statements=engine.timings,
            clickhouse_seconds=clickhouse_seconds,
            seconds=time.perf_counter() - started,
        )

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)  # a daemon: a read under way is not waited for long
        if self._kafka is not None:
            self._kafka.close()
