"""``samt124 bench``: run the measurements on private services and write ``RESULTS.md``."""

from __future__ import annotations

import argparse
import logging
import shlex
import shutil
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from devtools.bench.results import Section
from samt124 import arguments
from samt124.settings import Settings

MEASUREMENTS = (
    "kafka-tools",
    "passthrough",
    "faust-floor",
    "publisher",
    "e2e",
    "worker",
    "latency",
    "recovery",
    "sink",
    "sink-restart",
    "replay",
    "replay-log",
    "freshness",
    "cluster",
    "api",
    "dashboard",
)
# run when named with --only: cluster starts a three-broker cluster beside the benchmark's
# broker; replay-log writes and replays a log of 10 M events at --scale full (about 15 minutes)
ON_REQUEST = {"cluster", "replay-log"}
NEEDS_SERVER = {
    "e2e",
    "sink",
    "sink-restart",
    "replay",
    "replay-log",
    "freshness",
    "cluster",
    "dashboard",
}


@dataclass(frozen=True)
class Scale:
    perf_records: int  # Kafka's perf tools
    publish: int  # publisher and pass-through loops
    e2e: int
    latency_rate: float
    latency_seconds: float
    open_requests: int
    breaching: int
    recovery_lead: float  # seconds from the end of the preload to the first deadline
    sink: int
    sink_restart: int
    e2e_timeout: float
    freshness: int  # events published one at a time
    worker: int  # events preloaded for the worker alone
    dashboard: int = 100_000  # events stored before the dashboard's refreshes are timed
    replay_log: int = 60_000  # a log replayed whole (replay-log, when named)


SCALES = {
    "small": Scale(
        perf_records=200_000,
        publish=20_000,
        e2e=5_000,
        latency_rate=100,
        latency_seconds=15,
        open_requests=50_000,
        breaching=50,
        recovery_lead=40,
        sink=60_000,
        sink_restart=20_000,
        e2e_timeout=600,
        freshness=10,
        worker=20_000,
    ),
    "full": Scale(
        perf_records=2_000_000,
        publish=200_000,
        e2e=200_000,
        latency_rate=200,
        latency_seconds=60,
        open_requests=1_000_000,
        breaching=200,
        recovery_lead=400,
        sink=500_000,
        sink_restart=1_000_000,
        e2e_timeout=3600,
        freshness=40,
        worker=100_000,
        dashboard=1_000_000,
        replay_log=10_000_000,
    ),
}


def register(commands: Any) -> None:
    bench = commands.add_parser(
        "bench", help="measure throughput, latency, recovery and the sink on private services"
    )
    bench.add_argument("--scale", choices=sorted(SCALES), default="small")
    bench.add_argument(
        "--only",
        help="comma-separated measurements (default: all of"
        f" {','.join(n for n in MEASUREMENTS if n not in ON_REQUEST)}; cluster when named)",
    )
    bench.add_argument("--output", type=Path, default=Path("benchmarks/RESULTS.md"))
    bench.add_argument(
        "--work", type=Path, help="directory for the private services and logs (default: a tmp)"
    )
    bench.add_argument("--keep", action="store_true", help="keep the work directory")
    bench.add_argument(
        "--partitions", type=arguments.count, default=4, help="partitions per topic (4)"
    )
    bench.set_defaults(handler=cmd_bench)


def chosen(only: str | None) -> list[str]:
    if not only:
        return [name for name in MEASUREMENTS if name not in ON_REQUEST]
    names = [name.strip() for name in only.split(",") if name.strip()]
    unknown = [name for name in names if name not in MEASUREMENTS]
    if unknown:
        raise SystemExit(f"samt124 bench: unknown measurement(s) {unknown}; known: {MEASUREMENTS}")
    return [name for name in MEASUREMENTS if name in names]


def cmd_bench(args: argparse.Namespace, settings: Settings) -> int:
    from devtools.bench import harness, machine
    from devtools.bench.results import render

    names = chosen(args.only)
    # SIGTERM ends the run through the finally blocks below: the private services stop too
    signal.signal(signal.SIGTERM, _terminated)
    logging.getLogger("kafka").setLevel(logging.ERROR)
    logging.getLogger("aiokafka").setLevel(logging.ERROR)
    scale = SCALES[args.scale]
    work = args.work or Path(tempfile.mkdtemp(prefix="samt124-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    base = harness.private_settings(work / "home", settings.cache.resolve(), args.partitions)
    command = "samt124 " + shlex.join(sys.argv[1:])
    date = datetime.now(UTC).isoformat(timespec="seconds")
    server = bool(NEEDS_SERVER & set(names))
    sections: list[Section] = []
    facts: list[tuple[str, str]] = []
    print(f"samt124 bench --scale {args.scale}: {', '.join(names)} (work: {work})", flush=True)
    try:
        with harness.private_services(base, clickhouse_server=server) as server_url:
            facts = machine.describe(base, _server_version(server_url))

            def write() -> None:  # after every measurement: a long run keeps what it measured
                args.output.parent.mkdir(parents=True, exist_ok=True)
                args.output.write_text(render(sections, facts, command, date), encoding="utf-8")

            _Run(base, scale, work, server_url, sections, write).all(names)
    finally:
        if not args.keep and args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(render(sections, facts, command, date), encoding="utf-8")
    print(f"wrote {args.output}")
    return 1 if any(section.error for section in sections) else 0


def _figure(section: Section, label: str) -> float | None:
    """The value of the figure called ``label`` in ``section`` (None when absent)."""
    return next((f.value for f in section.figures if f.label == label), None)


def _terminated(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def _server_version(url: str | None) -> str | None:
    from devtools.bench import machine

    return machine.clickhouse_server_version(url) if url else None


@dataclass
class _Run:
    base: Settings
    scale: Scale
    work: Path
    server_url: str | None
    sections: list[Section]
    written: Callable[[], None]

    def __post_init__(self) -> None:
        self.figures: dict[str, float | None] = {}

    def all(self, names: list[str]) -> None:
        steps: dict[str, Callable[[], list[Section]]] = {
            "kafka-tools": self.kafka_tools,
            "passthrough": self.passthrough,
            "faust-floor": self.faust_floor,
            "publisher": self.publisher,
            "e2e": self.e2e,
            "worker": self.worker,
            "latency": self.latency,
            "recovery": self.recovery,
            "sink": self.sink,
            "sink-restart": self.sink_restart,
            "replay": self.replay,
            "replay-log": self.replay_log,
            "freshness": self.freshness,
            "cluster": self.cluster,
            "api": self.api,
            "dashboard": self.dashboard,
        }
        for name in names:
            started = time.monotonic()
            print(f"  {name} ...", flush=True)
            try:
                self.sections += steps[name]()
            except Exception as error:
                traceback.print_exc()
                self.sections.append(
                    Section(name, name, "", error=f"{type(error).__name__}: {error}")
                )
            self.written()
            print(f"  {name} done in {time.monotonic() - started:.0f} s", flush=True)

    def kafka_tools(self) -> list[Section]:
        from devtools.bench import baselines, workload

        size = workload.mean_size(workload.events(2_000))
        records = self.scale.perf_records
        section = Section(
            "kafka-tools",
            "Kafka's own perf tools (the broker's limit here)",
            f"`org.apache.kafka.tools.ProducerPerformance --num-records {records}"
            f" --record-size {size} --throughput -1 --producer-props acks=all` (the mean size of"
            " an encoded samt124 event), then `ConsumerPerformance --messages"
            f" {records}` reading the same topic, both from the kafka-tools jar on the benchmark's"
            " broker.",
        )
        topic = f"bench-perf-{int(time.time())}"
        produced = baselines.producer_performance(self.base, topic, records, size)
        consumed = baselines.consumer_performance(self.base, topic, records)
        self.figures["producer_perf"] = section.add(
            "ProducerPerformance",
            produced.per_second,
            "records/s",
            f"{produced.mb_per_second} MB/s",
        )
        section.add("ProducerPerformance p50", produced.p50_ms, "ms")
        section.add("ProducerPerformance p99", produced.p99_ms, "ms")
        self.figures["consumer_perf"] = section.add(
            "ConsumerPerformance (fetch)", consumed.per_second, "records/s", "group join excluded"
        )
        section.add("ConsumerPerformance (total)", consumed.per_second_total, "records/s")
        return [section]

    def passthrough(self) -> list[Section]:
        from devtools.bench import baselines, harness, workload
        from samt124.kafka.topics import Topics

        count = self.scale.publish
        section = Section(
            "passthrough",
            "Bare Python pass-through (the floor of Python client overhead)",
            f"{count:,} encoded samt124 events are copied from one topic to another by a loop"
            " that only consumes and produces (no decoding): kafka-python (`KafkaConsumer.poll`"
            " → `KafkaProducer.send`, idempotent, acks=all) and aiokafka, the client under Faust"
            " (`getmany` → `await send`, acks=all). The clock runs from the first poll to the last"
            " confirmed send.",
        )
        settings = harness.namespace(self.base, "copy")
        source = Topics(settings.topic_namespace).intake
        copies = (source + ".copy-kp", source + ".copy-aio")
        harness.topics_ready(settings, extra=copies)
        baselines.fill(settings, source, workload.encoded(workload.events(count)))
        kp = baselines.kafka_python_copy(settings, source, copies[0], count)
        aio = baselines.aiokafka_copy(settings, source, copies[1], count)
        self.figures["kafka_python_copy"] = section.add("kafka-python", count / kp, "events/s")
        self.figures["aiokafka_copy"] = section.add("aiokafka", count / aio, "events/s")
        section.ratio(
            "aiokafka / ProducerPerformance",
            self.figures["aiokafka_copy"],
            self.figures.get("producer_perf"),
        )
        return [section]

    def faust_floor(self) -> list[Section]:
        from devtools.bench import baselines, faust_floor, harness, workload
        from samt124.kafka.topics import Topics

        count = self.scale.worker
        section = Section(
            "faust-floor",
            "The Faust floor: a minimal faust-streaming agent on the same broker",
            f"{count:,} encoded samt124 events (raw bytes, keyed by request) are on a topic with"
            " the intake's partitions; a minimal Faust agent (`devtools/bench/faust_floor.py`,"
            f" a child process) reads them with `take_events({faust_floor.BATCH})`, hands each"
            " batch's sends to the producer together and awaits them once per batch (acks=all,"
            " linger 5 ms, as the worker): *copy*. *With a table*: the same, plus a write per key"
            " into a Faust table and one changelog record per key per batch (the shape of the"
            " worker's state writes). No decoding, no decisions: the best Faust itself does"
            " here. The clock runs from the first batch to the last delivered send; CPU is the"
            " agent process's own over the same span.",
        )
        settings = harness.namespace(self.base, "floor")
        source = Topics(settings.topic_namespace).intake
        targets = (source + ".floor-copy", source + ".floor-table")
        harness.topics_ready(settings, extra=targets)
        baselines.fill(settings, source, workload.encoded(workload.events(count)))
        for mode, target in zip(faust_floor.MODES, targets, strict=True):
            run = faust_floor.measure(settings, source, target, count, mode, self.work)
            label = "copy" if mode == "copy" else "with a table"
            self.figures[f"faust_{mode}"] = section.add(
                f"Faust {label}", run.per_second, "events/s"
            )
            self.figures[f"faust_{mode}_cpu"] = section.add(
                f"Faust {label}: CPU per event", run.cpu_us_per_event, "µs"
            )
        section.ratio(
            "Faust copy / aiokafka pass-through",
            self.figures.get("faust_copy"),
            self.figures.get("aiokafka_copy"),
        )
        return [section]

    def worker(self) -> list[Section]:
        from devtools.bench import worker_cost
        from devtools.local import kafka

        broker = kafka.status(self.base).pid
        section = worker_cost.measure(self.base, self.scale.worker, self.work, broker)
        rate = _figure(section, "one worker")
        cpu = _figure(section, "worker CPU per event")
        self.figures["worker"] = rate
        for label, key in (
            ("one worker / Faust floor with a table", "faust_table"),
            ("one worker / Faust floor copy", "faust_copy"),
            ("one worker / aiokafka pass-through", "aiokafka_copy"),
        ):
            section.ratio(label, rate, self.figures.get(key))
        section.ratio(
            "worker CPU per event / Faust floor's with a table",
            cpu,
            self.figures.get("faust_table_cpu"),
        )
        return [section]

    def publisher(self) -> list[Section]:
        from devtools.bench import throughput

        section, rate = throughput.measure_publisher(self.base, self.scale.publish, self.work)
        section.ratio("Publisher / ProducerPerformance", rate, self.figures.get("producer_perf"))
        return [section]

    def e2e(self) -> list[Section]:
        from devtools.bench import throughput

        assert self.server_url is not None
        section, rate = throughput.measure_end_to_end(
            self.base, self.server_url, self.scale.e2e, self.work, self.scale.e2e_timeout
        )
        for label, key in (
            ("e2e / Faust floor with a table", "faust_table"),
            ("e2e / ProducerPerformance", "producer_perf"),
            ("e2e / ConsumerPerformance", "consumer_perf"),
            ("e2e / kafka-python pass-through", "kafka_python_copy"),
            ("e2e / aiokafka pass-through", "aiokafka_copy"),
        ):
            section.ratio(label, rate, self.figures.get(key))
        self.figures["e2e"] = rate
        return [section]

    def latency(self) -> list[Section]:
        from devtools.bench import throughput

        return [
            throughput.measure_latency(
                self.base, self.scale.latency_rate, self.scale.latency_seconds, self.work
            )
        ]

    def recovery(self) -> list[Section]:
        from devtools.bench import recovery

        return recovery.measure_recovery(
            self.base,
            self.scale.open_requests,
            self.scale.breaching,
            self.work,
            self.scale.recovery_lead,
        )

    def sink(self) -> list[Section]:
        from devtools.bench import sink

        return [sink.measure_sink(self.base, self.server_url, self.scale.sink, self.work)]

    def replay(self) -> list[Section]:
        from devtools.bench import sink

        return [sink.measure_replay(self.base, self.server_url, self.scale.sink, self.work)]

    def replay_log(self) -> list[Section]:
        from devtools.bench import sink

        return [
            sink.measure_replay_log(self.base, self.server_url, self.scale.replay_log, self.work)
        ]

    def freshness(self) -> list[Section]:
        from devtools.bench import freshness

        return [
            freshness.measure_freshness(self.base, self.server_url, self.scale.freshness, self.work)
        ]

    def cluster(self) -> list[Section]:
        from devtools.bench import cluster

        assert self.server_url is not None
        return [
            cluster.measure_cluster(
                self.base,
                self.server_url,
                self.scale.e2e,
                self.scale.freshness,
                self.work,
                self.scale.e2e_timeout,
            )
        ]

    def dashboard(self) -> list[Section]:
        from devtools.bench import dashboard

        return [
            dashboard.measure_dashboard(self.base, self.server_url, self.scale.dashboard, self.work)
        ]

    def sink_restart(self) -> list[Section]:
        from devtools.bench import sink

        count = self.scale.sink_restart
        return [sink.measure_sink_restart(self.base, self.server_url, count, self.work)]

    def api(self) -> list[Section]:
        from devtools.bench import api

        seconds = 60.0 if self.scale is SCALES["full"] else 15.0
        return [api.measure_api(self.base, self.server_url, self.work, api.OPEN_REQUESTS, seconds)]
