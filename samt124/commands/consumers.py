"""``samt124 init``, ``sink``, ``report`` and ``sql``: the analytics side of the CLI."""

from __future__ import annotations

import argparse
import csv
import io
import json
import logging
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from consumers.analytics import reports
from consumers.clickhouse.engine import EngineError, opened
from consumers.clickhouse.migrations import migrate
from samt124 import arguments, metrics, reach
from samt124.domain.calendar import load_config
from samt124.errors import CommandError, CommandFailed
from samt124.settings import Settings

FORMATS = ("table", "csv", "json")


def render(columns: Sequence[str], rows: Sequence[Sequence[Any]], fmt: str) -> str:
    """Rows as an aligned table, CSV with a header, or a JSON array of objects."""
    if fmt == "json":
        records = [dict(zip(columns, row, strict=True)) for row in rows]
        return json.dumps(records, ensure_ascii=False, default=str, indent=1)
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows(rows)
        return out.getvalue().rstrip("\n")
    cells = [[str(value) for value in row] for row in rows]
    widths = [max([len(name), *(len(row[i]) for row in cells)]) for i, name in enumerate(columns)]
    lines = ["  ".join(name.ljust(w) for name, w in zip(columns, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join(lines)


def cmd_init(args: argparse.Namespace, settings: Settings) -> int:
    from samt124.commands.topics import check_topics
    from samt124.kafka.admin import ensure_topics

    if args.cluster is not None:
        settings = settings.model_copy(update={"clickhouse_cluster": args.cluster})
    target = settings.clickhouse
    if settings.clickhouse_cluster is not None and target.engine != "server":
        raise CommandError(
            "argument --cluster: a ClickHouse cluster needs a server (SAMT124_CLICKHOUSE_URL"
            " clickhouse://...), not the embedded engine"
        )
    reach.kafka(settings)
    reach.clickhouse(settings)
    created = ensure_topics(settings)
    print(f"kafka topics: {len(created)} created at {settings.bootstrap}")
    left = check_topics(settings, fix=args.fix)
    with opened(target) as engine:
        applied = migrate(engine, cluster=target.cluster)
    for migration in applied:
        print(f"applied {migration.version:03d}_{migration.name}")
    print(f"schema up to date in {settings.clickhouse.describe()}")
    if left and args.fix:
        raise CommandFailed(
            f"{len(left)} topic setting(s) could not be altered in place",
            "see the lines above for what to do",
        )
    return 0


def cmd_sink(args: argparse.Namespace, settings: Settings) -> int:
    from consumers.sink.loader import Sink
    from samt124.kafka.admin import ensure_topics

    logging.getLogger("consumers").setLevel(logging.INFO)
    reach.kafka(settings)
    try:
        reach.clickhouse(settings)
    except CommandFailed as away:  # the sink rides out ClickHouse outages: it says so and waits
        print(
            f"samt124 sink: {away.cause}; waiting for it (retrying with back-off)\n  {away.remedy}",
            file=sys.stderr,
        )
    ensure_topics(settings)  # the sink may start before the worker or `init` made them
    sink = Sink(settings, max_batch=args.max_batch, max_wait=args.max_wait)
    serve_at = metrics.where(args.metrics, settings)
    if serve_at is not None:
        metrics.serve(serve_at, sink.metrics.registry, "sink")
    sink.install_signal_handlers()
    stats = sink.run(until_idle=args.until_idle)
    print(
        f"stored {stats.events} events ({stats.sla_events} SLA facts, {stats.errors} undecodable)"
        f" and {stats.dead_letters} dead letters"
        f" from {stats.messages} messages in {stats.batches} batches"
    )
    return 0


def cmd_report(args: argparse.Namespace, settings: Settings) -> int:
    try:
        since = arguments.day(args.since, args.calendar) if args.since else None
    except argparse.ArgumentTypeError as problem:
        raise CommandError(f"argument --since: {problem}") from None
    params = reports.ReportParams(
        calendar=args.calendar,
        provinces=tuple(args.province or ()),
        since=since,
        as_of=args.as_of or datetime.now(UTC),
        calendars=load_config(settings.calendars) if settings.calendars else None,
        by=args.by,
        with_gregorian=args.with_gregorian,
    )
    reach.clickhouse(settings)
    with opened(settings.clickhouse, readonly=True) as engine:
        columns, rows = reports.run(engine, args.name, params)
    print(render(columns, rows, args.format))
    if args.name in ("durations", "alborz") and args.format == "table":
        print(f"\n({reports.DURATION_NOTE})")
    return 0


def cmd_sql(args: argparse.Namespace, settings: Settings) -> int:
    reach.clickhouse(settings)
    with opened(settings.clickhouse, readonly=not args.write) as engine:
        columns, rows = engine.query(args.query)
    print(render(columns, rows, args.format))
    return 0


MISSING_SCHEMA = ("UNKNOWN_DATABASE", "UNKNOWN_TABLE")


def _guarded(handler: Any) -> Any:
    """ClickHouse's refusals as a runtime failure: its one-line error, and what to do."""

    def run(args: argparse.Namespace, settings: Settings) -> int:
        try:
            return int(handler(args, settings))
        except EngineError as error:
            target = settings.clickhouse.describe()
            if any(marker in str(error) for marker in MISSING_SCHEMA):
                remedy = f"create the schema in {target} with `samt124 init` (once)"
            else:
                remedy = (
                    f"check SAMT124_CLICKHOUSE_URL ({target}) and the statement;"
                    " --debug shows the traceback"
                )
            raise CommandFailed(f"ClickHouse: {error}", remedy) from error

    return run


def register(commands: Any) -> None:
    """Add the analytics subcommands to the ``samt124`` parser."""
    init = commands.add_parser("init", help="create or upgrade the ClickHouse schema")
    init.add_argument(
        "--fix",
        action="store_true",
        help="alter existing topics' retention, compaction and min.insync.replicas to samt124's"
        " (partitions and replicas are said, not changed)",
    )
    init.add_argument(
        "--cluster",
        metavar="NAME",
        help="create the ClickHouse schema ON CLUSTER NAME: replicated local tables and"
        " Distributed tables sharded by request id (SAMT124_CLICKHOUSE_CLUSTER)",
    )
    init.set_defaults(handler=_guarded(cmd_init))

    sink = commands.add_parser(
        "sink", help="load provincial, SLA and dead-letter topics into ClickHouse"
    )
    sink.add_argument(
        "--max-batch", type=arguments.count, default=20_000, help="rows per insert (20000)"
    )
    sink.add_argument(
        "--max-wait", type=arguments.seconds, default=1.0, help="seconds per batch at most (1)"
    )
    sink.add_argument(
        "--until-idle",
        type=arguments.seconds,
        metavar="SECONDS",
        help="exit once nothing arrived for this long (default: run until stopped)",
    )
    sink.add_argument(
        "--metrics",
        type=metrics.address,
        metavar="HOST:PORT",
        help="serve Prometheus metrics on http://HOST:PORT/metrics"
        " (SAMT124_METRICS_HOST, SAMT124_METRICS_PORT; default: none)",
    )
    sink.set_defaults(handler=_guarded(cmd_sink))

    report = commands.add_parser(
        "report",
        help="print an analytics report",
        description="Figures computed at an instant from the requests' facts and clocks. "
        "heatmap: SLA breaches by province and week, each clock cycle whose deadline passed "
        "before it stopped (whether or not a breach fact was published).",
    )
    report.add_argument("name", choices=sorted(reports.REPORTS))
    report.add_argument("--format", choices=FORMATS, default="table")
    report.add_argument(
        "--calendar",
        choices=("jalali", "gregorian"),
        default="jalali",
        help="calendar of month, week and date labels, and of --since (jalali); Tehran time",
    )
    report.add_argument(
        "--province",
        action="append",
        type=arguments.province,
        help="ISO code, e.g. IR-30 (repeatable)",
    )
    report.add_argument(
        "--since",
        help="YYYY-MM-DD in the chosen calendar (Tehran days): requests submitted, facts "
        "occurred from then on; heatmap: breaches whose deadline fell from then on",
    )
    report.add_argument(
        "--as-of",
        type=arguments.as_of,
        metavar="INSTANT",
        help="the figures as they stood at this instant, from the facts that occurred by then: "
        "ISO 8601 or a Jalali date and time, Tehran time without an offset (default: now)",
    )
    report.add_argument(
        "--by",
        choices=sorted(reports.DIMENSIONS),
        default="province",
        help="durations and sla: group by province, body, category or month (province)",
    )
    report.add_argument(
        "--with-gregorian",
        action="store_true",
        help="Jalali months, weeks and dates also show the Gregorian dates",
    )
    report.set_defaults(handler=_guarded(cmd_report))

    sql = commands.add_parser("sql", help="run an ad-hoc query")
    sql.add_argument("query")
    sql.add_argument("--format", choices=FORMATS, default="table")
    sql.add_argument("--write", action="store_true", help="allow writes (servers: not readonly)")
    sql.set_defaults(handler=_guarded(cmd_sql))
