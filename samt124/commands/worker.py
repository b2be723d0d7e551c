"""``samt124 worker``: run the router and SLA tracker (a Faust worker)."""

from __future__ import annotations

import argparse
from typing import Any

from samt124.settings import Settings


def register(commands: Any) -> None:
    worker = commands.add_parser(
        "worker", help="route intake to the provinces and keep the SLA clocks (Faust)"
    )
    worker.add_argument(
        "--web-port", type=int, help="serve Faust's web views (health, /performance/) here"
    )
    worker.add_argument("--loglevel", default="warning", help="Faust log level")
    worker.add_argument(
        "--leave-on-stop",
        action="store_true",
        help="on a clean stop, remove this worker from its group so the others take its"
        " partitions at once (for scaling down; a restart without it gets them back faster)",
    )
    worker.set_defaults(handler=cmd_worker)


def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    import sys

    import faust

    from samt124.kafka.admin import ensure_topics
    from streams.app import Worker

    ensure_topics(settings)
    mismatch = partitions_mismatch(settings)
    if mismatch:
        print(f"samt124 worker: {mismatch}", file=sys.stderr)
        return 2
    settings.home.mkdir(parents=True, exist_ok=True)
    worker = Worker(settings, web_port=args.web_port)
    runner = faust.Worker(worker.app, loglevel=args.loglevel, quiet=True)
    if not sys.stdout.isatty():
        runner.spinner = None  # its cursor codes would land in log files
    try:
        runner.execute_from_commandline()
    finally:
        if args.leave_on_stop:
            leave_group(settings)
    return 0


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
