"""``samt124 worker``: run the router and SLA tracker (a Faust worker)."""

from __future__ import annotations

import argparse
from typing import Any

from samt124 import arguments, metrics, reach
from samt124.errors import CommandError, CommandFailed
from samt124.settings import Settings


def register(commands: Any) -> None:
    worker = commands.add_parser(
        "worker", help="route intake to the provinces and keep the SLA clocks (Faust)"
    )
    worker.add_argument(
        "--web-port",
        type=arguments.port,
        help="serve Faust's web views (health, /performance/) here",
    )
    worker.add_argument("--loglevel", default="warning", help="Faust log level")
    worker.add_argument(
        "--metrics",
        type=metrics.address,
        metavar="HOST:PORT",
        help="serve Prometheus metrics on http://HOST:PORT/metrics"
        " (SAMT124_METRICS_HOST, SAMT124_METRICS_PORT; default: none)",
    )
    worker.add_argument(
        "--leave-on-stop",
        action="store_true",
        help="on a clean stop, remove this worker from its group so the others take its"
        " partitions at once (for scaling down; a restart without it gets them back faster)",
    )
    worker.add_argument(
        "--rebuild",
        action="store_true",
        help="forget the worker group's state (committed offsets, changelogs, this worker's"
        " store) and read the intake again from its beginning; every worker of the group must"
        " be stopped, and the others discard their stores when they start",
    )
    worker.add_argument(
        "--status",
        action="store_true",
        help="print the status of the workers of this home (restarts and why, counts) and exit",
    )
    worker.set_defaults(handler=cmd_worker)

    verify = commands.add_parser(
        "verify",
        help="check that every intake message the worker acknowledged reached its province"
        " topic or the dead-letter topic (exit 1 when any is missing)",
    )
    verify.add_argument(
        "--since",
        type=arguments.instant,
        help="intake messages from this time (ISO 8601; Tehran if naive)",
    )
    verify.add_argument("--until", type=arguments.instant, help="intake messages before this time")
    verify.add_argument("--json", action="store_true", help="print the report as JSON")
    verify.set_defaults(handler=cmd_verify)


def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    import functools
    import sys

    import faust

    from samt124.kafka.admin import ensure_topics, resolved
    from streams.app import Worker, group_id, instance_id, store_dir
    from streams.identity import HomeLock, IdentityTaken
    from streams.rebuild import changelog_id, check_store, rebuild
    from streams.restart import Restarts

    if args.status:
        return print_status(settings)
    try:
        HomeLock.acquire(settings.home, instance_id(settings))
    except IdentityTaken as taken:
        cause, _, remedy = str(taken).partition("; ")
        raise CommandFailed(cause, remedy) from None
    reach.kafka(settings)
    ensure_topics(settings)
    settings = resolved(settings)  # the replication factor of what Faust creates
    mismatch = partitions_mismatch(settings)
    if mismatch:
        raise CommandError(mismatch)
    settings.home.mkdir(parents=True, exist_ok=True)
    datadir = store_dir(settings)
    # a worker that restarts itself runs with the same arguments: it rebuilds nothing again
    if args.rebuild and Restarts.inherited().count == 0:
        say = functools.partial(print, "samt124 worker --rebuild:", flush=True)
        rebuild(
            settings,
            group=group_id(settings),
            instance=instance_id(settings),
            datadir=datadir,
            say=say,
        )
        ensure_topics(settings)
        say("reading the intake from its beginning (`samt124 lag` shows how far)")
    if check_store(datadir, changelog_id(settings)) == "discard":
        print(
            f"samt124 worker: discarded the local store {datadir}: it was built from a"
            " request changelog that no longer exists (rebuilt); the states come from the"
            " changelog as it is now",
            flush=True,
        )
    worker = Worker(settings, web_port=args.web_port)
    serve_at = metrics.where(args.metrics, settings)
    if serve_at is not None:
        metrics.serve(serve_at, worker.metrics.registry, "worker")
    runner = faust.Worker(worker.app, loglevel=args.loglevel, quiet=True)
    if not sys.stdout.isatty():
        runner.spinner = None  # its cursor codes would land in log files
    try:
        runner.execute_from_commandline()
    finally:
        if args.leave_on_stop:
            leave_group(settings)
    return 0


def cmd_verify(args: argparse.Namespace, settings: Settings) -> int:
    import json

    from streams.app import group_id
    from streams.verify import verify

    if args.since and args.until and args.until <= args.since:
        raise CommandError(f"argument --until: {args.until} is not after --since {args.since}")
    reach.kafka(settings)
    report = verify(settings, group=group_id(settings), since=args.since, until=args.until)
    if args.json:
        print(json.dumps(report.to_json(), indent=2))
    else:
        print(format_report(report))
    return 0 if report.missing == 0 else 1


def format_report(report: Any) -> str:
    """The report as a table per intake partition, then the verdict."""
    lines = [
        f"{'partition':>9} {'from':>9} {'committed':>10} {'judged':>8} {'routed':>8}"
        f" {'dead':>6} {'moved':>6} {'missing':>8} {'both':>5} {'pending':>8}"
    ]
    for p in report.partitions:
        lines.append(
            f"{p.partition:>9} {p.first:>9} {p.committed:>10} {p.judged:>8} {p.routed:>8}"
            f" {p.dead_lettered:>6} {p.moved:>6} {len(p.missing):>8} {len(p.both):>5}"
            f" {p.pending:>8}"
        )
    for p in report.partitions:
        if p.missing:
            shown = ", ".join(map(str, p.missing[:20])) + (" ..." if len(p.missing) > 20 else "")
            lines.append(f"missing on partition {p.partition}: offsets {shown}")
        if p.both:
            shown = ", ".join(map(str, p.both[:20])) + (" ..." if len(p.both) > 20 else "")
            lines.append(f"routed and dead-lettered on partition {p.partition}: offsets {shown}")
    lines.append(
        f"repeats (at-least-once, collapsed downstream): {report.duplicated_routes} events routed"
        f" more than once, {report.duplicated_dead_letters} messages dead-lettered more than once"
    )
    judged = report.total("judged")
    if report.missing:
        lines.append(f"FAILED: {report.missing} of {judged} acknowledged intake messages are lost")
    else:
        lines.append(
            f"OK: each of {judged} acknowledged intake messages was routed or dead-lettered"
            f" ({report.total('pending')} not yet acknowledged)"
        )
    return "\n".join(lines)


def print_status(settings: Settings) -> int:
    """Print every worker status file of this home; 1 when there is none."""
    import json

    from streams.restart import read_status

    found = sorted((settings.home.resolve() / "worker").glob("*.status.json"))
    for path in found:
        print(json.dumps(read_status(path), indent=2, ensure_ascii=False))
    if not found:
        print(f"no worker has run on the home {settings.home.resolve()}")
    return 0 if found else 1


def partitions_mismatch(settings: Settings) -> str | None:
    """Why the worker cannot run on these topics, when their partitions are not as configured.

    The worker keeps a request's state in the partition Kafka's default partitioner gives its
    id, among ``SAMT124_PARTITIONS``; the intake and SLA topics must have that many."""
    from samt124.kafka.admin import partition_counts
    from samt124.kafka.topics import Topics

    topics = Topics(settings.topic_namespace)
    counts = partition_counts(settings, [topics.intake, topics.sla])
    wrong = {topic: n for topic, n in counts.items() if n != settings.partitions}
    if not wrong:
        return None
    found = ", ".join(f"{topic} has {n}" for topic, n in sorted(wrong.items()))
    return (
        f"{found} partitions, and SAMT124_PARTITIONS is {settings.partitions}: set"
        f" SAMT124_PARTITIONS to the topics' partition count (the same for {topics.intake}"
        f" and {topics.sla})"
    )


def leave_group(settings: Settings) -> None:
    """Remove this worker's static member from its group. A static member sends no LeaveGroup
    when it stops (so that a restart keeps its partitions); without this the others wait for
    the session timeout (30 s) before they take its partitions over."""
    from kafka.admin import KafkaAdminClient, MemberToRemove

    from streams.app import group_id, instance_id

    member = MemberToRemove(group_instance_id=instance_id(settings), reason="worker stopped")
    admin = KafkaAdminClient(**settings.kafka_client_options())
    try:
        result = admin.remove_group_members(group_id(settings), [member])
    finally:
        admin.close()
    errors = {error.__name__ for error in result.values() if error.__name__ != "NoError"}
    if errors:
        print(f"samt124 worker: leaving {group_id(settings)}: {', '.join(sorted(errors))}")
    else:
        print(f"samt124 worker: left {group_id(settings)} as {instance_id(settings)}")
