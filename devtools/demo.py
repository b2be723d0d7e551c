"""``samt124 demo``: the whole pipeline on this machine, end to end, then its reports.

1. the local Kafka broker (``samt124 local up kafka``) unless ``SAMT124_KAFKA_BOOTSTRAP`` names
   a cluster; analytics go where the settings say (chdb in ``<home>/chdb`` by default);
2. ``samt124 init``: the topics and the ClickHouse schema;
3. the worker, the sink and a lag monitor (``lag --watch 5 --json``) as subprocesses, their
   output in ``<home>/demo/*.log``, and the live dashboard (``samt124 dashboard``, its URL
   printed: 127.0.0.1:8125, or a free port when that one is taken) for as long as they run;
4. ``samt124 simulate --recent``: national traffic ending about now, at a steady rate, with a
   progress line every few seconds;
5. a wait until the worker's and the sink's consumer groups have caught up, then the sink is
   stopped (a chdb directory belongs to one process at a time) and the reports are read;
6. the headline figures on the terminal and a self-contained HTML page
   (:mod:`consumers.analytics.html_report`).

Whatever the demo started is stopped on the way out, also on Ctrl-C, SIGTERM or an error: the
subprocesses by SIGTERM (SIGKILL after a grace period), the broker only if the demo started it.
Each run publishes new requests (the seed follows the clock unless ``--seed`` is given), so a
second run adds to what the first stored; ``make clean`` starts afresh.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

from consumers.analytics import html_report
from samt124 import arguments, reach
from samt124.settings import Settings, child_environment

DEFAULT_MINUTES = 3.0
DEFAULT_RATE = 600.0  # events/s: well within what one worker routes on two cores
DEFAULT_OUTPUT = Path("reports/demo.html")
REPORTS = ("sla", "backlog", "durations", "alborz", "heatmap")
SAMPLE_SECONDS = 5.0  # how often the demo reads the consumer lag
PROGRESS_SECONDS = 10.0  # how often it prints a progress line
LAG_WINDOW = 30.0
CATCH_UP_MIN_SECONDS = 300.0
STOP_SECONDS = 60.0
JOIN_SECONDS = 120.0
CHANGELOG_SUFFIX = "-changelog"
PR_SET_PDEATHSIG = 1
DASHBOARD_PORT = 8125  # samt124 dashboard's default; a free port when it is taken
DASHBOARD_START_SECONDS = 60.0
DASHBOARD_SERVING = "dashboard: http://"
PUBLISHED = re.compile(rb"published ([\d,]+) / ([\d,]+) events")
PUBLISHED_FINAL = re.compile(r"published (\d+) events in ([\d.]+) s")


class DemoError(RuntimeError):
    """A step failed; the message says which and where its log is."""


class Stopped(Exception):
    """SIGTERM arrived: stop like on Ctrl-C."""


def register(commands: Any) -> None:
    demo = commands.add_parser(
        "demo",
        help="run the whole pipeline on local defaults and print the reports (make demo)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    demo.add_argument(
        "--minutes",
        type=arguments.positive,
        default=DEFAULT_MINUTES,
        help=f"how long to publish traffic (default {DEFAULT_MINUTES:g})",
    )
    demo.add_argument(
        "--rate",
        type=arguments.positive,
        help=f"events per second (default {DEFAULT_RATE:g}, or --count spread over --minutes)",
    )
    demo.add_argument(
        "--count", type=arguments.count, help="events to publish (default rate × minutes)"
    )
    demo.add_argument(
        "--seed", type=arguments.natural, help="simulator seed (default: from the clock)"
    )
    demo.add_argument(
        "--output",
        type=Path,
        default=DEFAULT_OUTPUT,
        help=f"HTML report (default {DEFAULT_OUTPUT})",
    )
    demo.add_argument(
        "--keep-running",
        action="store_true",
        help="leave the worker, sink and lag monitor running after the report until Ctrl-C",
    )
    demo.set_defaults(handler=cmd_demo)


@dataclass(frozen=True)
class Plan:
    count: int
    rate: float
    seed: int

    @classmethod
    def of(cls, args: argparse.Namespace) -> Plan:
        seconds = max(float(args.minutes), 0.05) * 60
        rate = args.rate
        count = args.count
        if count is None:
            rate = rate or DEFAULT_RATE
            count = round(rate * seconds)
        elif rate is None:
            rate = count / seconds
        seed = args.seed if args.seed is not None else int(time.time()) % 1_000_000
        return cls(count=max(int(count), 1), rate=max(float(rate), 1.0), seed=seed)


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    plan = Plan.of(args)
    if not settings.uses_local_kafka:  # the local broker the demo starts itself
        reach.kafka(settings)
    reach.clickhouse(settings)
    logging.getLogger("kafka").setLevel(logging.ERROR)  # the lag reader's decoding notices
    demo = Demo(settings, keep_running=args.keep_running)
    previous = signal.signal(signal.SIGTERM, _raise_stopped)
    try:
        data = demo.run(plan)
        output = args.output
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(html_report.build_html(data), encoding="utf-8")
        print()
        print(html_report.headline_text(data, html_path=str(output)), flush=True)
        if args.keep_running:
            demo.hold()
    except DemoError as error:
        print(f"\nsamt124 demo: {error}", file=sys.stderr)
        return 1
    except (KeyboardInterrupt, Stopped):
        print("\nsamt124 demo: interrupted, stopping", file=sys.stderr)
        return 130
    else:
        return 0
    finally:
        demo.close()
        signal.signal(signal.SIGTERM, previous)


def _raise_stopped(signum: int, frame: FrameType | None) -> None:
    raise Stopped


# ---------------------------------------------------------------- subprocesses


def _die_with_parent() -> None:
    """In the child, before exec: get SIGTERM if the demo itself dies (Linux)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class Child:
    """A ``samt124`` subcommand in its own process group, its output in a log file."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    @property
    def running(self) -> bool:
        return self.popen.poll() is None

    def stop(self, timeout: float = STOP_SECONDS) -> int:
        """SIGTERM, wait, SIGKILL if it would not go; the exit status."""
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait()
        return self.popen.returncode

    def tail(self, lines: int = 15) -> str:
        try:
            text = self.log.read_text(errors="replace").replace("\r", "\n")
        except FileNotFoundError:
            return "(no output)"
        return "\n".join(line for line in text.splitlines()[-lines:] if line.strip())


# ---------------------------------------------------------------- lag


def caught_up(reports: Sequence[Any], groups: Sequence[str]) -> bool:
    """True when every one of ``groups`` was read and has consumed all it was given.

    The worker's table changelogs (``...-changelog``) are assigned to its group but read only
    when it recovers, so nothing is ever committed there: they do not count.
    """
    by_name = {report.group: report for report in reports}
    for name in groups:
        report = by_name.get(name)
        if report is None or report.reading.error or not report.partitions:
            return False
        for partition in report.partitions:
            lag = partition.lag
            if lag.topic.endswith(CHANGELOG_SUFFIX):
                continue
            if lag.log_end is None or lag.log_end > (lag.committed or 0):
                return False
    return True


def lag_groups(reports: Sequence[Any]) -> tuple[html_report.LagGroup, ...]:
    return tuple(
        html_report.LagGroup(
            group=report.group,
            status=report.status.name,
            state=str(report.reading.state),
            partitions=len(report.partitions),
            sum_lag=report.sum_lag,
            max_lag=report.max_lag,
            max_lag_seconds=report.max_lag_seconds,
        )
        for report in reports
    )


# ---------------------------------------------------------------- the run


class LagWatch:
    """The consumer lag of the pipeline's groups, judged over a sliding window (one reader)."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._monitor: Any = None
        self._reader: Any = None

    def sample(self) -> list[Any]:
        from kafka.errors import KafkaError

        from consumers.lag.reader import LagReader, Monitor

        try:
            if self._monitor is None:
                self._reader = LagReader(self._settings)
                prefix = f"{self._settings.topic_namespace}-"
                self._monitor = Monitor(self._reader, window=LAG_WINDOW, prefix=prefix)
            reports: list[Any] = self._monitor.sample()
        except (KafkaError, KeyError, OSError):
            return []  # no reading this time; the next sample asks again
        return reports

    def close(self) -> None:
        if self._reader is not None:
            with contextlib.suppress(Exception):
                self._reader.close()
        self._reader = self._monitor = None


@dataclass
class Demo:
    settings: Settings
    keep_running: bool = False
    children: list[Child] = field(default_factory=list)
    started_kafka: bool = False
    began: float = field(default_factory=time.monotonic)
    lag_series: list[html_report.LagPoint] = field(default_factory=list)
    lag: LagWatch = field(init=False)
    url: str | None = None  # the live dashboard's, while it runs

    def __post_init__(self) -> None:
        self.lag = LagWatch(self.settings)

    @property
    def directory(self) -> Path:
        return self.settings.home.resolve() / "demo"

    def say(self, text: str) -> None:
        elapsed = int(time.monotonic() - self.began)
        print(f"[{elapsed // 60}:{elapsed % 60:02d}] {text}", flush=True)

    def run(self, plan: Plan) -> html_report.ReportData:
        self.directory.mkdir(parents=True, exist_ok=True)
        self._kafka()
        self.say(f"analytics: {self.settings.clickhouse.describe()}")
        self._step("init", "init", timeout=300)
        self.say("init: topics and ClickHouse schema ready")
        self.children.append(self._spawn("worker", "worker"))
        self.children.append(self._spawn("sink", "sink"))
        self._wait_joined()
        self.children.append(self._spawn("lag", "lag", "--watch", "5", "--json"))
        self.say(f"worker, sink and lag monitor running (logs in {self.directory})")
        self.children.append(self._spawn("api", "api", "--listen", self.settings.api_listen))
        self.say(
            f"the 124 service API: http://{self.settings.api_listen}/open311/v2/services.json"
            " (samt124 keys add NAME --role publisher|body|ministry for a key)"
        )
        self._dashboard()
        self.say(
            f"publishing {plan.count:,} events at {plan.rate:,.0f}/s "
            f"(seed {plan.seed}): national 124 traffic ending about now"
        )
        published, seconds = self._publish(plan)
        self.say(f"published {published:,} events in {seconds:.0f} s")
        final = self._catch_up(max(CATCH_UP_MIN_SECONDS, seconds))
        if not self.keep_running:
            self._stop_pipeline()
        self.say("reading the reports")
        data = self._read_reports(final, published, seconds)
        self.say("done")
        return data

    def _kafka(self) -> None:
        from devtools.local import kafka

        if not self.settings.uses_local_kafka:
            if not kafka.answers(self.settings.bootstrap):
                raise DemoError(f"Kafka at {self.settings.bootstrap} does not answer")
            self.say(f"kafka: the cluster at {self.settings.bootstrap} (SAMT124_KAFKA_BOOTSTRAP)")
            return
        if kafka.status(self.settings).running:
            self.say(f"kafka: the local broker already runs at {self.settings.bootstrap}")
            return
        self.say("kafka: starting the local broker (fetched from Maven Central on first use)")
        self.started_kafka = True
        kafka.up(self.settings)
        self.say(f"kafka: local broker ready at {self.settings.bootstrap}")

    def _command(self, *args: str) -> list[str]:
        """A samt124 subcommand; ``--home`` on its command line shows whose process it is."""
        home = str(self.settings.home.resolve())
        return [sys.executable, "-m", "samt124.cli", "--home", home, *args]

    def _spawn(self, name: str, *args: str) -> Child:
        log = self.directory / f"{name}.log"
        with log.open("ab") as out:
            popen = subprocess.Popen(
                self._command(*args),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=child_environment(self.settings),
                start_new_session=True,
                preexec_fn=_die_with_parent,  # noqa: PLW1509 - only prctl, no locks taken
            )
        return Child(name, popen, log)

    def _step(self, name: str, *args: str, timeout: float) -> None:
        """Run a subcommand to its end; fail with its output when it fails."""
        child = self._spawn(name, *args)
        self.children.append(child)
        try:
            status = child.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            child.stop()
            raise DemoError(f"{name} did not finish in {timeout:.0f} s:\n{child.tail()}") from None
        finally:
            self.children.remove(child)
        if status != 0:
            raise DemoError(f"{name} failed (exit {status}):\n{child.tail()}")

    def _check_children(self) -> None:
        for child in self.children:
            if child.name in ("worker", "sink") and not child.running:
                raise DemoError(
                    f"the {child.name} exited (status {child.popen.returncode}); "
                    f"last lines of {child.log}:\n{child.tail()}"
                )

    def _sample(self) -> list[Any]:
        """One lag reading; empty while Kafka cannot say (a topic the worker just created)."""
        reports = self.lag.sample()
        self.lag_series.extend(
            html_report.LagPoint(report.reading.at, report.group, report.sum_lag)
            for report in reports
        )
        return reports

    def _groups(self) -> list[str]:
        from consumers.sink.loader import group_id

        namespace = self.settings.topic_namespace
        return [f"{namespace}-worker", group_id(self.settings)]

    def _lag_text(self, reports: Sequence[Any]) -> str:
        by_group = {report.group: report for report in reports}
        parts = [
            f"{name} lag {by_group[group].sum_lag:,}"
            for group, name in zip(self._groups(), ("worker", "sink"), strict=True)
            if group in by_group
        ]
        return "   ".join(parts) or "lag: no reading yet"

    def _wait_joined(self, timeout: float = JOIN_SECONDS) -> None:
        """Wait until the worker's and the sink's consumer groups have their partitions."""
        groups = self._groups()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_children()
            reports = self._sample()
            joined = {report.group for report in reports if report.partitions}
            if set(groups) <= joined:
                return
            time.sleep(1.0)
        raise DemoError(
            f"the worker and the sink did not join their consumer groups within {timeout:.0f} s;"
            f" logs in {self.directory}"
        )

    def _dashboard(self) -> None:
        """Serve the live dashboard while the pipeline runs; its URL, or why it is not there."""
        port = DASHBOARD_PORT if _port_free(DASHBOARD_PORT) else _free_port()
        child = self._spawn(
            "dashboard", "dashboard", "--listen", f"127.0.0.1:{port}", "--refresh", "5"
        )
        deadline = time.monotonic() + DASHBOARD_START_SECONDS
        while time.monotonic() < deadline and child.running:
            if DASHBOARD_SERVING in child.log.read_text(errors="replace"):
                self.children.append(child)
                self.url = f"http://127.0.0.1:{port}/"
                self.say(f"dashboard: {self.url} (live while the pipeline runs)")
                return
            time.sleep(0.5)
        child.stop()
        self.say(f"dashboard did not start (see {child.log}); start it with `{self._how()}`")

    def _how(self) -> str:
        """The command that serves the dashboard on these analytics."""
        return f"samt124 --home {self.settings.home} dashboard"

    def _publish(self, plan: Plan) -> tuple[int, float]:
        simulate = self._spawn(
            "simulate",
            "simulate",
            "--recent",
            "--count",
            str(plan.count),
            "--rate",
            f"{plan.rate:g}",
            "--seed",
            str(plan.seed),
        )
        self.children.append(simulate)
        sampled = printed = time.monotonic()
        reports: list[Any] = []
        while simulate.running:
            time.sleep(1.0)
            self._check_children()
            now = time.monotonic()
            if now - sampled >= SAMPLE_SECONDS:
                sampled = now
                reports = self._sample()
            if now - printed >= PROGRESS_SECONDS:
                printed = now
                sent = _published_so_far(simulate.log)
                if sent is None:  # still in the dry runs that place the traffic before now
                    self.say("  finding the start at which the traffic ends by now")
                else:
                    self.say(f"  published {sent:,} / {plan.count:,}   {self._lag_text(reports)}")
        status = simulate.popen.returncode
        self.children.remove(simulate)
        output = simulate.log.read_text(errors="replace")
        found = PUBLISHED_FINAL.search(output)
        if status != 0 or found is None:
            raise DemoError(f"simulate failed (exit {status}):\n{simulate.tail()}")
        return int(found.group(1)), float(found.group(2))

    def _catch_up(self, timeout: float) -> tuple[html_report.LagGroup, ...]:
        """Wait until the worker and the sink have consumed everything; the last lag reading."""
        self.say("waiting for the worker and the sink to catch up")
        groups = self._groups()
        deadline = time.monotonic() + timeout
        printed = time.monotonic()
        in_a_row = 0
        while True:
            self._check_children()
            reports = self._sample()
            in_a_row = in_a_row + 1 if caught_up(reports, groups) else 0
            if in_a_row >= 2:
                mine = [report for report in reports if report.group in groups]
                self.say(f"caught up: {self._lag_text(mine)}")
                return lag_groups(reports)
            if time.monotonic() > deadline:
                raise DemoError(
                    f"the consumers did not catch up within {timeout:.0f} s "
                    f"({self._lag_text(reports)}); logs in {self.directory}"
                )
            if time.monotonic() - printed >= PROGRESS_SECONDS:
                printed = time.monotonic()
                self.say(f"  {self._lag_text(reports)}")
            time.sleep(2.0 if in_a_row else SAMPLE_SECONDS / 2)

    def _stop_pipeline(self) -> None:
        """Stop the dashboard, the API, the lag monitor, the sink (so that chdb is free) and the
        worker."""
        for name in ("dashboard", "api", "lag", "sink", "worker"):
            for child in [child for child in self.children if child.name == name]:
                status = child.stop()
                self.children.remove(child)
                if name == "sink" and status not in (0, -signal.SIGTERM):
                    raise DemoError(f"the sink stopped with status {status}:\n{child.tail()}")
        self.say("dashboard, API, worker, sink and lag monitor stopped")
        self.say(f"the dashboard on what is stored now: `{self._how()}`")

    def _read_reports(
        self, lag: tuple[html_report.LagGroup, ...], published: int, seconds: float
    ) -> html_report.ReportData:
        from consumers.analytics import reports
        from consumers.clickhouse.engine import EngineError, opened

        as_of = datetime.now(UTC)  # every figure at one instant
        params = reports.ReportParams(as_of=as_of)
        tables: dict[str, html_report.Table] = {}
        try:
            with opened(self.settings.clickhouse, readonly=True, lock_timeout=120) as engine:
                for name in REPORTS:
                    columns, rows = reports.run(engine, name, params)
                    tables[name] = html_report.Table.of(columns, rows)
                _, span = engine.query(
                    "SELECT toUInt64(count()), toUInt64(toUnixTimestamp(min(submitted_at))), "
                    f"toUInt64(toUnixTimestamp(max(submitted_at))) FROM {engine.database}.requests"
                )
        except EngineError as error:
            raise DemoError(f"reading the reports failed: {error}") from error
        requests, first, last = (int(value) for value in span[0]) if span else (0, 0, 0)
        return html_report.ReportData(
            generated_at=as_of,
            reports=tables,
            published=published,
            publish_seconds=seconds,
            first_submitted=datetime.fromtimestamp(first, UTC) if requests else None,
            last_submitted=datetime.fromtimestamp(last, UTC) if requests else None,
            analytics=self.settings.clickhouse.describe(),
            bootstrap=self.settings.bootstrap,
            namespace=self.settings.topic_namespace,
            lag=lag,
            lag_series=tuple(self.lag_series),
            duration_note=str(getattr(reports, "DURATION_NOTE", "")),
        )

    def hold(self) -> None:
        """--keep-running: wait for Ctrl-C while the pipeline runs."""
        self.say("the worker, sink and lag monitor keep running; Ctrl-C stops everything")
        if self.url:
            self.say(f"dashboard: {self.url}")
        while True:
            self._check_children()
            time.sleep(1.0)

    def close(self) -> None:
        """Stop whatever the demo started, newest first; the broker last."""
        for child in reversed(self.children):
            with contextlib.suppress(OSError):
                child.stop()
        self.children.clear()
        self.lag.close()
        if self.started_kafka:
            from devtools.local import kafka

            self.started_kafka = False
            kafka.down(self.settings)
            print("kafka: local broker stopped", flush=True)


def _port_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _published_so_far(log: Path) -> int | None:
    """The last ``published N / M events`` progress figure the simulator wrote (None: none yet)."""
    try:
        with log.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(handle.tell() - 400, 0))
            tail = handle.read()
    except FileNotFoundError:
        return None
    found = PUBLISHED.findall(tail)
    return int(found[-1][0].replace(b",", b"")) if found else None
