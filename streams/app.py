"""The Faust worker: the router agent and the SLA timer, one writer of the request states.

A changelog-backed table holds the request states (keyed by ``request_id``, co-partitioned with
``samt124.intake`` and ``samt124.sla``). Two things write it, never at the same time (they take
turns under one lock, :attr:`Worker.writer`), so each state has one writer:

* ``route`` reads ``samt124.intake``; each message goes through :class:`Pipeline` and its output
  (the event to its province, the derived referral and SLA facts, or a dead letter) is delivered
  before the new state is written, so that a replay after a crash repeats what did not arrive;
* a timer looks at the requests whose next SLA threshold has come (a heap per worker, rebuilt
  from the table after every recovery), publishes what fell due and, once the facts are
  delivered, writes the request's state with them marked as emitted: with ``route``'s next
  record of the request, or by itself within a second (:data:`SAVE_SECONDS`), one record per
  request however many ticks fired for it meanwhile. A crash before makes the worker publish
  them again after its recovery, with the same ids (derived from the request,
  clock, cycle and threshold), which collapse downstream: each fact is stored once per request,
  clock and cycle.

``route`` checks that it sees every message of its partitions in order (:mod:`streams.sequence`):
a worker that finds it was made to skip some restarts from the last committed offset rather
than go on. It takes a batch of messages, hands everything they cause (output and changelog
writes, one per request and batch) to the Kafka client and waits until all of it is delivered
(:mod:`streams.delivery`) before the batch is acknowledged, so an offset is never committed
ahead of its effects: at-least-once, with idempotent effects downstream (events keep their ids).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import secrets
import socket
import time
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, NoReturn

import faust
from faust.types import TP

from samt124.domain.calendar import Closure
from samt124.domain.lifecycle import RequestState
from samt124.kafka.aio import ssl_context
from samt124.kafka.topics import Topics, partition_of
from samt124.settings import Settings
from streams import timers
from streams.deadlines import PartitionedDeadlines
from streams.delivery import Deliveries, Record
from streams.faults import Faults
from streams.identity import FenceWatch, file_name
from streams.metrics import WorkerMetrics
from streams.pipeline import Outgoing, Pipeline, Where
from streams.recovery import TableManager
from streams.restart import Restarts, read_status, restart, status_path, write_status
from streams.sequence import Sequence, Skipped, committed_with_retry
from streams.states import States
from streams.stream_time import CAUGHT_UP, sla_now

log = logging.getLogger("samt124.worker")
TICK_SECONDS = 0.2
# A timer pass holds the writer lock for about PASS_SECONDS at most: it takes the due requests
# DUE_PER_LOOK at a time and stops once that long has gone, so an intake batch waits for one
# short pass, never for a backlog of deadlines (a start that finds tens of thousands past due).
# A tick runs passes while requests remain due, for about TICK_BUSY_SECONDS, giving the lock
# back between them (asyncio's lock is first come, first served: a waiting batch goes first).
PASS_SECONDS = 0.02
DUE_PER_LOOK = 32
TICK_BUSY_SECONDS = 0.15
BATCH = 500  # messages an agent takes at once (acknowledged only after they are processed)
BATCH_WAIT = 0.02  # seconds an agent waits for a batch to fill
IDENTITY_SECONDS = 2.0  # how often a worker that may be fenced asks who holds its identity
STATUS_SECONDS = 10.0  # how often the status file is rewritten
FENCED_EXIT = 4  # the exit status of a worker that stops because another took its identity
ELSEWHERE_SECONDS = 2.0  # how long the timer defers a request whose partition it does not hold
STALE_SAY_SECONDS = 10.0  # at most one log line about stale messages in this time
SAVE_SECONDS = 1.0  # how often the timer writes the states it changed that ``route`` did not
# how long a revocation waits for the batch or timer pass under way before the worker restarts
# instead (well within the group's session timeout, 30 s)
REVOKE_WAIT_SECONDS = 15.0


def group_id(settings: Settings) -> str:
    return f"{settings.topic_namespace}-worker"


def changelog_topic(settings: Settings) -> str:
    """The request table's changelog topic, as Faust names it: ``<app id>-<table>-changelog``."""
    return f"{group_id(settings)}-requests-changelog"


def store_dir(settings: Settings) -> Path:
    """This worker's local store (one directory per worker identity: two may share a home)."""
    return settings.home.resolve() / "worker" / file_name(instance_id(settings))


def instance_id(settings: Settings) -> str:
    """The worker's static member id: ``SAMT124_WORKER_ID``, else host name and home directory."""
    if settings.worker_id:
        return settings.worker_id
    home = hashlib.sha256(str(settings.home.resolve()).encode()).hexdigest()[:12]
    return f"{socket.gethostname()}-{home}"


def _credentials(settings: Settings) -> Any:
    protocol = settings.kafka_security_protocol
    if protocol == "PLAINTEXT":
        return None
    context = ssl_context(settings)
    if protocol.startswith("SASL"):
        password = settings.kafka_sasl_password
        return faust.SASLCredentials(
            username=settings.kafka_sasl_username,
            password=password.get_secret_value() if password else None,
            mechanism=settings.kafka_sasl_mechanism or "PLAIN",
            ssl_context=context,
        )
    return faust.SSLCredentials(context)


Handler = Callable[[Any, Deliveries], Awaitable[None]]


def _headers(raw: Any) -> list[tuple[str, bytes]]:
    if not raw:
        return []
    items = raw.items() if isinstance(raw, dict) else raw
    return [(str(k), bytes(v) if v is not None else b"") for k, v in items]


class Worker:
    """Holds the Faust app, its topics and tables, and the per-worker timer state."""

    def __init__(self, settings: Settings, *, web_port: int | None = None) -> None:
        self.settings = settings
        self.topics = Topics(settings.topic_namespace)
        self.pipeline = Pipeline.load(settings)
        self.queue = PartitionedDeadlines(
            lambda request_id: partition_of(request_id.encode(), self.pipeline.partitions)
        )
        # per intake partition: the latest event time read, and when its last message came
        self.watermarks: dict[int, datetime] = {}
        self.last_messages: dict[int, float] = {}
        # held by ``route`` for a batch and by the timer for a tick, each until what it sent is
        # delivered: the request states have one writer at a time
        self.writer = asyncio.Lock()
        # request states the timer changed once their facts were delivered, not yet on the
        # changelog (request id: partition): ``route`` writes those it writes anyway, the timer
        # the others every SAVE_SECONDS, so a request has one changelog record per batch
        self.unsaved: dict[str, int] = {}
        self.saved_at = 0.0
        self.stale_said = 0.0  # when the worker last logged passing over stale messages
        self.sequence = Sequence()
        self._admin: Any = None  # a kafka-python admin client, for the committed offsets
        self.counts = {
            "routed": 0,
            "dead_letters": 0,
            "failures": 0,  # dead letters because handling the message raised
            "duplicates": 0,
            "read_again": 0,
            "stale": 0,  # messages of an ended group generation, left for the new one
            "sla_facts": 0,
            "moved": 0,
            "timer_failures": 0,  # requests whose due facts could not be worked out
        }
        self.metrics = WorkerMetrics()
        self.metrics.open_requests = lambda: len(self.queue)
        self.restarts = Restarts.inherited()
        self.faults = Faults(
            settings.fault_rate, settings.fault_batch_rate, settings.fault_seed, self.restarts.count
        )
        if self.faults.active:
            self.pipeline.faults = self.faults
            log.warning("fault injection on: %s", self.faults)
        # unique per process: tells this worker from another that took its static member id
        self.client_id = f"samt124-worker-{secrets.token_hex(4)}"
        self.fence = FenceWatch(self.client_id)
        self.status = status_path(settings.home, instance_id(settings))
        self.started_at = datetime.now(UTC)
        datadir = store_dir(settings)
        self.timers_path = datadir / "sla-timers.marshal"
        self.app = faust.App(
            group_id(settings),
            broker=[f"kafka://{server}" for server in settings.bootstrap.split(",")],
            broker_credentials=_credentials(settings),
            store="rocksdb://" if settings.worker_store == "rocksdb" else "memory://",
            # one directory per worker identity: two workers may share a home
            datadir=str(datadir),
            topic_partitions=settings.partitions,
            # `samt124 worker` resolves it from the cluster (min(3, brokers)) and creates the
            # topics and changelogs first (samt124.kafka.admin); Faust finds them there
            topic_replication_factor=settings.replication_factor or 1,
            topic_disable_leader=True,
            consumer_auto_offset_reset="earliest",
            producer_acks=-1,
            producer_linger_ms=5,
            producer_max_batch_size=512 * 1024,
            broker_commit_interval=1.0,
            # a replacement for a crashed worker gets its partitions after this long
            broker_session_timeout=30.0,
            # static membership: a worker that restarts (after a crash, or to re-read what the
            # consumer skipped) gets its partitions back at once and the others keep theirs,
            # instead of a rebalance of the whole group
            consumer_group_instance_id=instance_id(settings),
            broker_client_id=self.client_id,
            broker_heartbeat_interval=3.0,
            broker_commit_every=10_000,
            stream_wait_empty=False,
            table_standby_replicas=0,
            table_cleanup_interval=3600.0,
            # resumes the stream partitions only once a recovery has emptied the queues
            TableManager=TableManager,
            web_enabled=web_port is not None,
            web_port=web_port or 6066,
            web_bind="127.0.0.1",
        )
        self._define()

    def _define(self) -> None:
        app = self.app
        raw = {
            "key_type": bytes,
            "value_type": bytes,
            "key_serializer": "raw",
            "value_serializer": "raw",
        }
        partitions = self.settings.partitions
        intake = app.topic(self.topics.intake, partitions=partitions, **raw)
        # keys travel as JSON (Faust's default); a request's state stays the bytes of its JSON
        # (RequestState.to_bytes) in memory too, decoded when it is used: a recovery then stores
        # what it reads without decoding it, and a million open requests take a fraction of
        # the memory their decoded dicts would
        self.requests = app.Table(
            "requests",
            default=None,
            partitions=partitions,
            value_type=bytes,  # raw values
            # RocksDB's memory, bounded: per partition two 16 MiB write buffers, and a 64 MiB
            # block cache (Faust's defaults are 3 x 64 MiB and 2 GiB)
            options={
                "write_buffer_size": 16 * 1024**2,
                "max_write_buffer_number": 2,
                "block_cache_size": 64 * 1024**2,
            },
        )
        self.states = States(self.requests, persistent=self.settings.worker_store == "rocksdb")
        # a few announced closures: in memory, read whole at each start (the URL needs a path:
        # a bare "memory://" is falsy and Faust would take the app's store instead)
        self.closures = app.GlobalTable(
            "closures", default=None, partitions=partitions, store="memory://closures"
        )

        @app.agent(intake, name="route")  # type: ignore[untyped-decorator]
        async def route(stream: Any) -> None:
            out = Deliveries(self._produce)
            async for events in stream.take_events(BATCH, within=BATCH_WAIT):
                await self._batch("route", events, self._on_intake, out)

        @app.timer(interval=TICK_SECONDS)  # type: ignore[untyped-decorator]
        async def tick() -> None:
            try:
                await self._tick()
            except Exception as error:
                self._halt("tick", f"the SLA timer failed: {type(error).__name__}: {error}")

        @app.timer(interval=IDENTITY_SECONDS)  # type: ignore[untyped-decorator]
        async def identity() -> None:
            await self._check_identity()

        @app.timer(interval=STATUS_SECONDS)  # type: ignore[untyped-decorator]
        async def status() -> None:
            self._write_status()

        @app.task  # type: ignore[untyped-decorator]
        async def quiet_clients() -> None:
            # the Kafka client builds a debug record per message sent unless told otherwise
            for name in ("aiokafka", "kafka"):
                logging.getLogger(name).setLevel(logging.WARNING)
            self.fence.install()
            self._write_status()

        @self.requests.on_recover  # type: ignore[untyped-decorator]
        async def rebuild() -> None:
            await self._rebuild_queue()

        @app.on_before_shutdown.connect  # type: ignore[untyped-decorator]
        async def keep_timers(app: Any, **kwargs: Any) -> None:
            await self._keep_timers()

        @app.on_partitions_revoked.connect  # type: ignore[untyped-decorator]
        async def revoked(app: Any, revoked: Any, **kwargs: Any) -> None:
            await self._on_revoked(revoked)

    # -- batches -----------------------------------------------------------------------------

    async def _batch(self, agent: str, events: list[Any], handle: Handler, out: Deliveries) -> None:
        """Handle a batch; return once everything it caused is delivered.

        Faust's ``take_events`` acknowledges every event of a batch when the agent's loop body
        returns *or raises* (and after a crash the supervisor starts the agent on the messages
        that follow, so the rest of the batch is skipped for good). So nothing may escape from
        here: a failure the per-message guards did not catch replaces the process before anything
        is acknowledged (:meth:`_halt`), and a stop that cancels the agent mid-batch lets the
        batch finish first, so the acknowledgement it then gets is true.
        """
        task = asyncio.ensure_future(self._handle(agent, events, handle, out))
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            log.warning(
                "%s: stopping; finishing the batch of %d messages first", agent, len(events)
            )
            await task
            raise

    async def _handle(
        self, agent: str, events: list[Any], handle: Handler, out: Deliveries
    ) -> None:
        failing = self.faults.batch_point(len(events))
        done = 0
        try:
            async with self.writer:
                started = time.monotonic()
                for done, event in enumerate(events):
                    if done == failing:
                        self.faults.fail_batch(done, len(events))
                    if self._stale(event.message):
                        continue
                    if await self._in_sequence(event.message):
                        await handle(event.message, out)
                await out.settle()  # before the batch is acknowledged
                self.metrics.batch(agent, len(events), time.monotonic() - started)
        except Exception as error:
            message = events[done].message
            firsts: dict[tuple[str, int], int] = {}
            for event in events:
                firsts.setdefault(
                    (event.message.topic, event.message.partition), event.message.offset
                )
            held = ", ".join(f"{t}[{p}]@{o}" for (t, p), o in sorted(firsts.items()))
            self._halt(
                agent,
                f"{type(error).__name__} at {message.topic}[{message.partition}]@{message.offset},"
                f" outside the per-message guard: {error}. Nothing of this batch is acknowledged"
                f" (it starts at {held})",
            )

    def _stale(self, message: Any) -> bool:
        """Whether ``message`` was fetched in a group generation that has ended (or is ending:
        the group is rebalancing): it waited in the batch while the group rebalanced. Faust
        itself passes such messages over as they enter a stream; one already taken into a batch
        is passed over here, and marked so that it is not acknowledged either, for the
        partition's next holder (this worker again, maybe) reads it again from the committed
        offset. Handled, it could write a request's
        state to the changelog of a partition this worker no longer holds, after its new holder
        recovered from it; acknowledged, it could carry the committed offset past the messages
        before it that the new generation has not handled yet."""
        if not self.app.rebalancing and message.generation_id == self.app.consumer_generation_id:
            return False
        message.acked = True  # Faust acknowledges only a message not marked acknowledged
        self.counts["stale"] += 1
        now = time.monotonic()
        if now - self.stale_said >= STALE_SAY_SECONDS:  # an operator sees it if it goes on
            self.stale_said = now
            log.warning(
                "passing over %s[%d]@%d for the group's next generation (rebalancing: %s;"
                " fetched in generation %s, now %s); %d passed over so far",
                message.topic,
                message.partition,
                message.offset,
                self.app.rebalancing,
                message.generation_id,
                self.app.consumer_generation_id,
                self.counts["stale"],
            )
        return True

    async def _on_revoked(self, revoked: Any) -> None:
        """Partitions are taken away: return only once no batch and no timer pass is under way,
        so that everything this worker sent for them (province events, facts, request states)
        is delivered before it rejoins the group, and so before the partitions' next holder
        reads their changelog. The timer's states not yet saved for those partitions are left
        to their next holder, which publishes the same facts again (same ids)."""
        try:
            await asyncio.wait_for(self.writer.acquire(), REVOKE_WAIT_SECONDS)
        except TimeoutError:
            self._halt(
                "rebalance",
                f"a batch or timer pass held the request states for {REVOKE_WAIT_SECONDS:.0f} s"
                " while partitions were taken away",
            )
        try:
            gone = {tp.partition for tp in revoked if tp.topic == self.topics.intake}
            for request_id, partition in list(self.unsaved.items()):
                if partition in gone:
                    del self.unsaved[request_id]
        finally:
            self.writer.release()

    def _halt(self, agent: str, reason: str) -> NoReturn:
        """Stop before anything more is acknowledged, and start again from the committed offsets."""
        self._write_status()
        restart(f"{agent}: {reason}", self.status)

    # -- one worker per identity -------------------------------------------------------------

    async def _check_identity(self) -> None:
        """Stop when another process has taken this worker's static member id."""
        if not self.fence.suspicious():
            return
        try:
            holder = await asyncio.to_thread(self._identity_holder)
        except Exception as error:
            log.warning("cannot ask who holds this worker's member id: %s", error)
            return
        if not self.fence.judge(holder):
            return
        message = (
            f"samt124 worker: another worker holds the member id {instance_id(self.settings)!r}"
            f" in the group {group_id(self.settings)} (client {holder}); two workers with one id"
            " fence each other in turn, so this one stops. Give each worker its own"
            " SAMT124_WORKER_ID (or SAMT124_HOME)."
        )
        log.error(message)
        self._write_status(stopped=message)
        for handler in logging.getLogger().handlers:
            handler.flush()
        os._exit(FENCED_EXIT)  # at once: nothing more is acknowledged or committed

    def _identity_holder(self) -> str | None:
        from kafka import KafkaAdminClient

        if self._admin is None:
            self._admin = KafkaAdminClient(**self.settings.kafka_client_options())
            # Faust's member metadata is not the plain consumer protocol's: kafka-python says
            # so on every describe, whole metadata included; the instance id is all we read
            logging.getLogger("kafka.admin._groups").setLevel(logging.ERROR)
        group = group_id(self.settings)
        members = self._admin.describe_groups([group]).get(group, {}).get("members") or []
        mine = instance_id(self.settings)
        for member in members:
            if member.get("group_instance_id") == mine:
                return str(member.get("client_id"))
        return None

    def _write_status(self, stopped: str | None = None) -> None:
        previous = read_status(self.status)
        status = {
            "instance": instance_id(self.settings),
            "group": group_id(self.settings),
            "pid": os.getpid(),
            "client_id": self.client_id,
            "started_at": self.started_at.isoformat(),
            "updated_at": datetime.now(UTC).isoformat(),
            "restarts": self.restarts.count,
            "last_restart": previous.get("last_restart") if self.restarts.count else None,
            "counts": dict(self.counts),
        }
        if stopped:
            status["stopped"] = stopped
        try:
            write_status(self.status, status)
        except OSError as error:
            log.warning("cannot write %s: %s", self.status, error)

    # -- message handlers --------------------------------------------------------------------

    async def _in_sequence(self, message: Any) -> bool:
        """Check that no message of the partition was skipped; restart the worker if one was.
        False for a message read again that this worker has handled already."""
        tp = (message.topic, message.partition)
        generation = message.generation_id
        if not self.sequence.knows(tp, generation):
            committed = await committed_with_retry(self._committed, tp)
            self.sequence.start(tp, generation, committed)
        try:
            if self.sequence.see(tp, generation, message.offset):
                return True
        except Skipped as skipped:
            self._halt("sequence", str(skipped))
        self.counts["read_again"] += 1
        return False

    async def _committed(self, tp: tuple[str, int]) -> int | None:
        from kafka import KafkaAdminClient, TopicPartition

        def read() -> int | None:
            if self._admin is None:
                self._admin = KafkaAdminClient(**self.settings.kafka_client_options())
            wanted = TopicPartition(*tp)
            group = group_id(self.settings)
            offsets = self._admin.list_group_offsets({group: [wanted]}).get(group, {})
            meta = offsets.get(wanted)
            return int(meta.offset) if meta is not None and meta.offset >= 0 else None

        committed = await asyncio.to_thread(read)
        if committed is None:
            return None
        # messages before the log start are gone (retention): the partition starts there
        (earliest,) = (await self.app.consumer.earliest_offsets(TP(*tp))).values()
        return max(committed, int(earliest))

    def _stored(self, request_id: str, partition: int) -> bytes | None:
        """A request's state as stored (decoded by the pipeline, under its guard)."""
        return self.states.get(request_id, partition) if request_id else None

    async def _produce(self, record: Record) -> Any:
        return await self.app.producer.send(
            record.topic, record.key, record.value, record.partition, None, list(record.headers)
        )

    @staticmethod
    async def _send(outgoing: tuple[Outgoing, ...], out: Deliveries) -> None:
        for o in outgoing:
            await out.send(Record(o.topic, o.key, o.value, o.partition, tuple(o.headers)))

    @staticmethod
    def _to_changelog(
        table: Any,
        key: str,
        partition: int,
        out: Deliveries,
        current: Callable[[], bytes | None],
        delivered: Callable[[Record, Any], None] | None = None,
    ) -> None:
        """Send ``key``'s value, as ``current()`` gives it then, to its changelog partition once
        what the batch published is delivered (:meth:`Deliveries.after`; one record per key and
        batch, the same value again if it is resent)."""
        topic = table.changelog_topic
        name = topic.get_topic_name()

        def record() -> Record:
            raw_key, _ = topic.prepare_key(key, table.key_serializer)
            return Record(name, raw_key, current(), partition, refresh=current, delivered=delivered)

        out.after((name, key), record)

    def _write(self, table: Any, key: str, value: Any, partition: int, out: Deliveries) -> None:
        """Write a table entry: in memory now, to its changelog once the batch is delivered."""
        table.data[key] = value
        topic = table.changelog_topic

        def current() -> bytes | None:
            raw, _ = topic.prepare_value(table.data.get(key), table.value_serializer)
            return raw  # type: ignore[no-any-return]

        self._to_changelog(table, key, partition, out, current)

    def _write_state(self, request_id: str, raw: bytes, partition: int, out: Deliveries) -> None:
        """A request's state: the worker's now, on its changelog partition once what the batch
        published is delivered, stored once that record is delivered (:mod:`streams.states`)."""
        states = self.states
        states.put(request_id, raw, partition)

        def current() -> bytes | None:
            return states.get(request_id, partition)

        def stored(record: Record, result: Any) -> None:
            if record.value is not None:
                states.delivered(request_id, record.value, partition, int(result.offset))

        self._to_changelog(self.requests, request_id, partition, out, current, stored)

    def _put(self, state: RequestState, partition: int, out: Deliveries) -> None:
        self.metrics.overdue.on_state(state)
        self.unsaved.pop(state.request_id, None)  # its record carries what the timer changed
        self._write_state(state.request_id, state.to_bytes(), partition, out)

    async def _on_intake(self, message: Any, out: Deliveries) -> None:
        self.last_messages[message.partition] = time.monotonic()
        self.metrics.took_intake()
        key: bytes | None = message.key
        request_id = key.decode("utf-8", "replace") if key else ""
        wall = datetime.now(UTC)
        step = self.pipeline.on_intake(
            self._stored(request_id, message.partition),
            key,
            message.value,
            _headers(message.headers),
            Where(message.topic, message.partition, message.offset),
            wall,
        )
        await self._send(step.outgoing, out)
        for fact in step.facts:
            self.metrics.fact(fact)
        if step.dead_letter:
            self.counts["dead_letters"] += 1
            self.counts["failures"] += step.failure
            self.metrics.dead_letter(step.dead_letter, step.failure)
            log.warning(
                "dead letter %s[%d]@%d: %s",
                message.topic,
                message.partition,
                message.offset,
                step.dead_letter,
            )
            return
        if step.moved_to is not None:
            self.counts["moved"] += 1
            self.metrics.moved.inc()
            if self.counts["moved"] == 1:
                log.warning(
                    "%s[%d]@%d belongs on partition %d (murmur2 of its request id, Kafka's"
                    " default partitioner); copied there. Messages published without a key or"
                    " with another partitioner cost one more message each.",
                    message.topic,
                    message.partition,
                    message.offset,
                    step.moved_to,
                )
            return
        if step.closure is not None:
            self._record_closure(step.closure, message.partition, out)
        mark = self.watermarks.get(message.partition)
        if step.event is not None and (mark is None or step.event.occurred_at > mark):
            self.watermarks[message.partition] = step.event.occurred_at
        if step.duplicate:
            self.counts["duplicates"] += 1
            self.metrics.duplicates.inc()
        if step.state is not None and not step.duplicate:
            self.counts["routed"] += 1
            self.metrics.routed.inc()
            self._put(step.state, message.partition, out)
            # the message is on its request's partition (the pipeline moved it otherwise)
            self.queue.schedule(step.state.request_id, step.due, message.partition)

    def _record_closure(self, closure: Closure, partition: int, out: Deliveries) -> None:
        key = f"{closure.province}:{closure.first_day}:{closure.last_day}"
        value = {
            "province": closure.province,
            "first_day": closure.first_day.isoformat(),
            "last_day": closure.last_day.isoformat(),
        }
        self._write(self.closures, key, value, partition, out)

    # -- timers ------------------------------------------------------------------------------

    async def _tick(self) -> None:
        """One look at the due requests; a stop that cancels it lets it finish first, so that
        no state the timer changed in memory is left for ``route`` to store ahead of the facts
        it records."""
        task = asyncio.ensure_future(self._fire())
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            await task
            raise

    async def _fire(self) -> None:
        started = time.monotonic()
        more = True
        while more and time.monotonic() - started < TICK_BUSY_SECONDS:
            async with self.writer:
                more = await self._due()

    async def _due(self) -> bool:
        """Publish the SLA facts that fell due and store the states that record them, for about
        :data:`PASS_SECONDS`; whether requests due may remain. Nothing while the group
        rebalances: which partitions this worker holds is being decided."""
        if self.app.rebalancing:
            return False
        self._adopt_closures()
        wall = datetime.now(UTC)
        read = time.monotonic()

        def now_of(partition: int) -> datetime:
            last = self.last_messages.get(partition)
            idle = CAUGHT_UP if last is None else timedelta(seconds=read - last)
            return sla_now(wall, self.watermarks.get(partition), idle=idle)

        held = self._held()
        out = Deliveries(self._produce)
        started, fired = time.monotonic(), 0
        more = True
        while more and time.monotonic() - started < PASS_SECONDS:
            due = self.queue.pop_due(now_of, DUE_PER_LOOK)
            more = len(due) == DUE_PER_LOOK
            fired += await self._fire_due(due, held, wall, out)
        await out.settle()
        if self.unsaved and time.monotonic() - self.saved_at >= SAVE_SECONDS:
            await self._save(held)
        if fired:
            self.metrics.batch("timer", fired, time.monotonic() - started)
        return more

    async def _fire_due(
        self, due: list[tuple[str, datetime]], held: set[int], wall: datetime, out: Deliveries
    ) -> int:
        """Work out and send the facts of ``due`` requests (each with its partition's instant);
        how many requests had facts."""
        fired = 0
        for request_id, now in due:
            partition = partition_of(request_id.encode(), self.settings.partitions)
            if partition not in held:  # another worker's, or not assigned again yet
                later = wall + timedelta(seconds=ELSEWHERE_SECONDS)
                self.queue.schedule(request_id, later, partition)
                continue
            try:
                raw = self._stored(request_id, partition)
                if raw is None:
                    continue
                step = self.pipeline.due(RequestState.from_bytes(raw), now, wall)
            except Exception:
                # this request's clocks are looked at again after a restart or its next event
                self.counts["timer_failures"] += 1
                log.exception("SLA timer: cannot work out the due facts of request %s", request_id)
                continue
            if step.state is not None:
                self.counts["sla_facts"] += len(step.facts)
                fired += 1
                await self._send(step.outgoing, out)
                for fact in step.facts:
                    self.metrics.fact(fact)
                self.metrics.overdue.on_state(step.state)
                # in memory now; on the changelog once the facts are delivered (below)
                self.states.put(request_id, step.state.to_bytes(), partition)
                self.unsaved[request_id] = partition
            self.queue.schedule(request_id, step.due, partition)
        return fired

    async def _save(self, held: set[int]) -> None:
        """Write the states the timer changed whose facts are delivered, one record each.

        A crash before makes the worker publish those facts again after its recovery, with the
        same ids. States of partitions this worker no longer holds are left to their owner."""
        unsaved, self.unsaved = self.unsaved, {}
        out = Deliveries(self._produce)
        for request_id, partition in unsaved.items():
            if partition in held:
                raw = self.states.get(request_id, partition)
                if raw:
                    self._write_state(request_id, raw, partition, out)
        await out.settle()
        self.saved_at = time.monotonic()

    def _held(self) -> set[int]:
        """The intake partitions this worker holds now (whose request states it writes)."""
        return {
            tp.partition for tp in self.app.consumer.assignment() if tp.topic == self.topics.intake
        }

    def _adopt_closures(self) -> None:
        known = sum(len(v) for v in self.pipeline.calendar.closures.values())
        if len(self.closures) <= known:
            return
        self.pipeline.with_closures(
            [
                Closure(
                    value["province"],
                    date.fromisoformat(value["first_day"]),
                    date.fromisoformat(value["last_day"]),
                )
                for value in self.closures.values()
                if value
            ]
        )

    async def _rebuild_queue(self) -> None:
        """After each recovery: the SLA timer's queue and the overdue requests, from the timers
        kept at the last clean stop where they still hold (:mod:`streams.timers`), else worked
        out from each stored state."""
        started = time.monotonic()
        self._adopt_closures()
        self.queue.clear()
        self.metrics.overdue.clear()
        held = self._held()  # the states of partitions held before a rebalance may linger
        offsets = self.states.recovered(held)
        kept = timers.take(self.timers_path) if self.states.persistent else {}
        count, reused = 0, 0
        if self.states.persistent:
            for partition in sorted(held):
                mine = kept.get(partition)
                if mine is not None and mine.offset == offsets.get(partition):
                    self.queue.load(partition, mine.due)
                    self.metrics.overdue.load(mine.overdue)
                    reused += 1
                else:
                    count += await self._schedule(self.states.items_of(partition), partition)
        else:
            partitions = self.settings.partitions
            count = await self._schedule(
                (request_id, raw)
                for request_id, raw in self.states.items()
                if not held or partition_of(request_id.encode(), partitions) in held
            )
        log.warning(
            "recovered %d requests, %d with running SLA clocks, in %.1f s%s",
            count,
            len(self.queue),
            time.monotonic() - started,
            f" ({reused} of {len(held)} partitions' timers as kept at the last stop)"
            if reused
            else "",
        )

    async def _schedule(
        self, items: Iterable[tuple[str, bytes]], partition: int | None = None
    ) -> int:
        """Put each stored request (of ``partition``, when known) in the SLA timer's queue;
        how many there were."""
        wall = datetime.now(UTC)
        count = 0
        for count, (request_id, raw) in enumerate(items, start=1):
            if raw:
                try:
                    state = RequestState.from_bytes(raw)
                    due = self.pipeline.next_due(state)
                    self.metrics.overdue.recover(
                        state, wall, self.pipeline.calendar, self.pipeline.policies
                    )
                except Exception:
                    self.counts["timer_failures"] += 1
                    log.exception(
                        "SLA timer: cannot work out the due facts of request %s", request_id
                    )
                    continue
                self.queue.schedule(request_id, due, partition)
            if count % 5_000 == 0:
                await asyncio.sleep(0)
        return count

    async def _keep_timers(self) -> None:
        """On a clean stop: write the timers, once the batch or tick under way is done."""
        if not self.states.persistent:
            return
        async with self.writer:
            started = time.monotonic()
            offsets = self.states.offsets
            partitions = self.settings.partitions
            overdue: dict[int, list[tuple[str, int, datetime]]] = {}
            for entry in self.metrics.overdue.entries():
                overdue.setdefault(partition_of(entry[0].encode(), partitions), []).append(entry)
            kept = {
                partition: timers.PartitionTimers(
                    offset, self.queue.entries(partition), overdue.get(partition, [])
                )
                for partition, offset in offsets.items()
            }
            try:
                timers.write(self.timers_path, kept)
            except OSError as error:
                log.warning("SLA timer: cannot keep the timers in %s: %s", self.timers_path, error)
                return
            log.warning(
                "kept the SLA timers of %d requests on %d partitions in %.1f s",
                len(self.queue),
                len(kept),
                time.monotonic() - started,
            )
