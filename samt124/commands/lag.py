"""``samt124 lag``: consumer lag in messages and seconds, stall detection, Prometheus.

One run samples the groups every second for ``--window`` seconds and prints the last sample
with each partition's status over that window. ``--watch`` keeps sampling and printing;
``--serve`` keeps sampling for a Prometheus endpoint. The pipeline's groups are those named
``<namespace>-...`` (``samt124-worker``, ``samt124-sink``), or the one given with ``--group``.

Exit codes: 0 healthy (OK, WARN, REWIND); 3 a group is STALL, STOP or ERR over a filled
window (``--watch`` stops at the first such sample); 2 bad arguments.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Sequence
from typing import Any

from consumers.lag import formats
from consumers.lag.reader import GroupReport, LagReader, Monitor
from samt124 import arguments, reach
from samt124.kafka import trouble as kafka_trouble
from samt124.settings import Settings

DEFAULT_WINDOW = 10.0
ONE_SHOT_INTERVAL = 1.0
DEFAULT_SERVE_INTERVAL = 10.0
UNHEALTHY = 3


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "lag",
        help="consumer lag in messages and seconds, stall detection, Prometheus",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--group", help="this group only (default: every <namespace>-* group)")
    parser.add_argument("--json", action="store_true", help="JSON instead of the table")
    parser.add_argument(
        "--watch",
        type=arguments.seconds,
        metavar="SECONDS",
        help="sample every SECONDS until interrupted",
    )
    parser.add_argument(
        "--window",
        type=arguments.seconds,
        default=DEFAULT_WINDOW,
        metavar="SECONDS",
        help=f"judge each partition over this many seconds (default {DEFAULT_WINDOW:g})",
    )
    parser.add_argument(
        "--serve",
        type=_address,
        metavar="HOST:PORT",
        help="serve Prometheus metrics on http://HOST:PORT/metrics, sampling every --watch "
        f"seconds (default {DEFAULT_SERVE_INTERVAL:g})",
    )
    parser.add_argument(
        "--cluster-name", default="samt124", help="cluster_name label of the metrics"
    )
    parser.add_argument(
        "--record", action="store_true", help="also write every sample to ClickHouse lag_samples"
    )
    parser.set_defaults(handler=run)


def _address(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``0.0.0.0:9308``, ``[::1]:9308``) -> (host, port)."""
    host, separator, port = text.rpartition(":")
    if not separator or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host.strip("[]") or "0.0.0.0", arguments.port(port)


def run(args: argparse.Namespace, settings: Settings) -> int:
    from kafka.errors import KafkaError

    # Faust's members carry their own assignor metadata, which kafka-python cannot parse and
    # warns about on every read; the consumer id, host and client id are read all the same
    logging.getLogger("kafka.admin").setLevel(logging.ERROR)
    reach.kafka(settings)
    if args.record:
        reach.clickhouse(settings)
    try:
        with LagReader(settings) as reader:
            monitor = Monitor(
                reader, window=args.window, prefix=f"{settings.topic_namespace}-", group=args.group
            )
            if args.serve:
                return _serve(args, settings, monitor)
            if args.watch:
                return _watch(args, settings, monitor)
            return _once(args, settings, monitor)
    except KafkaError as error:
        reason = kafka_trouble.explain(error)
        print(f"samt124 lag: cannot read Kafka at {settings.bootstrap}: {reason}", file=sys.stderr)
        return UNHEALTHY


def _once(args: argparse.Namespace, settings: Settings, monitor: Monitor) -> int:
    """Sample every second until every window is filled (a partition seen late gets a cap)."""
    deadline = time.monotonic() + 2 * args.window + 5 * ONE_SHOT_INTERVAL
    reports = _sample(args, settings, monitor)
    while not all(report.filled for report in reports) and time.monotonic() < deadline:
        time.sleep(ONE_SHOT_INTERVAL)
        reports = _sample(args, settings, monitor)
    if not reports:
        print(f"no consumer groups named {settings.topic_namespace}-*", file=sys.stderr)
        return 0
    _print(args, reports)
    return UNHEALTHY if _unhealthy(reports) else 0


def _watch(args: argparse.Namespace, settings: Settings, monitor: Monitor) -> int:
    while True:
        reports = _sample(args, settings, monitor)
        _print(args, reports, indent=None)
        if _unhealthy(reports):
            return UNHEALTHY
        time.sleep(args.watch)


def _serve(args: argparse.Namespace, settings: Settings, monitor: Monitor) -> int:
    from consumers.lag.exporter import LagCollector, serve

    host, port = args.serve
    collector = LagCollector(args.cluster_name)
    try:
        server, _ = serve(host, port, collector)
    except OSError as error:
        print(f"samt124 lag: cannot serve on {host}:{port}: {error}", file=sys.stderr)
        return 2
    print(f"serving http://{host}:{port}/metrics", flush=True)
    try:
        while True:
            collector.update(_sample(args, settings, monitor))
            time.sleep(args.watch or DEFAULT_SERVE_INTERVAL)
    finally:
        server.shutdown()


def _sample(args: argparse.Namespace, settings: Settings, monitor: Monitor) -> list[GroupReport]:
    reports = monitor.sample()
    if args.record:
        _record(settings, reports)
    return reports


def _record(settings: Settings, reports: Sequence[GroupReport]) -> None:
    from consumers.clickhouse.engine import opened

    rows = formats.lag_sample_rows(reports)
    with opened(settings.clickhouse) as engine:
        engine.insert("lag_samples", formats.LAG_SAMPLE_COLUMNS, rows, dedup_token=None)


def _unhealthy(reports: Sequence[GroupReport]) -> bool:
    return any(report.filled and report.status.unhealthy for report in reports)


def _print(
    args: argparse.Namespace, reports: Sequence[GroupReport], indent: int | None = 2
) -> None:
    if args.json:
        print(formats.as_json(reports, args.window, indent=indent), flush=True)
    else:
        print(formats.table(reports) + "\n", flush=True)
