"""``samt124 replay``: rebuild ClickHouse from the retained log into an empty database."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from typing import Any

from consumers.clickhouse.engine import opened
from consumers.clickhouse.migrations import migrate
from consumers.sink.replay import MAX_JOBS, jobs_for
from samt124 import arguments, reach
from samt124.errors import CommandFailed
from samt124.settings import Settings

SAY_EVERY = 10.0  # seconds between progress lines when stderr is not a terminal


def register(commands: Any) -> None:
    replay = commands.add_parser(
        "replay",
        help="rebuild ClickHouse from the retained log into an empty database (resumable)",
        description=(
            "Reads the provincial and SLA topics from their beginning to where they end now and"
            " stores them as the sink does, into the database of --clickhouse-url, which must"
            " be empty (or hold an earlier replay that was stopped: it goes on from there)."
            " Ends with a check that every message of the log is in ClickHouse."
        ),
    )
    replay.add_argument(
        "--max-batch", type=arguments.count, default=100_000, help="rows per insert (100000)"
    )
    replay.add_argument(
        "--jobs",
        type=arguments.count,
        default=None,
        help=(
            "sink processes sharing the work (into a server: one per core, at most"
            f" {MAX_JOBS}; into chdb: 1, the only one it allows)"
        ),
    )
    replay.set_defaults(handler=cmd_replay)


def cmd_replay(args: argparse.Namespace, settings: Settings) -> int:
    from consumers.sink import replay

    logging.getLogger("consumers").setLevel(logging.WARNING)
    reach.kafka(settings)
    reach.clickhouse(settings)
    target = settings.clickhouse
    jobs = jobs_for(args.jobs, target.engine, os.cpu_count())
    with opened(target) as engine:
        migrate(engine)
        rows = replay.rows_stored(engine)
    where = replay.log_range(settings)
    group = replay.replay_group(settings, target.database)
    if rows == 0:
        replay.start_over(settings, group, where)  # before any insert: a kill can resume
        before = 0
    else:
        positions = replay.committed(settings, group, list(where.end))
        if not positions:
            raise CommandFailed(
                f"{target.describe()} already holds {rows:,} events and no replay into it was"
                " started",
                "replay rebuilds into an empty database: give --clickhouse-url a new database",
            )
        before = where.done(positions)
    total = where.messages
    started = time.monotonic()
    said = 0.0
    tty = sys.stderr.isatty()

    def progress(done: int) -> None:
        nonlocal said
        now = time.monotonic()
        line = replay.progress_line(done, total, now - started, before=before)
        if tty:
            print(f"\r{line}", end="", file=sys.stderr, flush=True)
        elif now - said >= SAY_EVERY or done >= total:
            said = now
            print(line, file=sys.stderr, flush=True)

    print(
        f"replaying {total - before:,} of {total:,} messages into {target.describe()}"
        + (f" (going on from {before:,})" if before else "")
        + (f" with {jobs} processes" if jobs > 1 else ""),
        file=sys.stderr,
    )
    if jobs > 1:
        done, finished = replay.replay_in_processes(
            settings, where, group, max_batch=args.max_batch, jobs=jobs, progress=progress
        )
        stored = done - before
    else:
        stats, finished = replay.replay(
            settings, where, group, max_batch=args.max_batch, progress=progress
        )
        stored = stats.messages
    if tty:
        print(file=sys.stderr)
    elapsed = time.monotonic() - started
    if not finished:
        raise CommandFailed(
            f"stopped after storing {stored:,} messages",
            "run `samt124 replay` again with the same settings: it goes on from there",
        )
    with opened(target) as engine:
        missing = replay.check(engine, where)
        db = engine.database
        (unique,) = engine.query(f"SELECT count() FROM {db}.events_unique")[1][0]
        (sla,) = engine.query(f"SELECT count() FROM {db}.sla_events_unique")[1][0]
    rate = stored / elapsed if elapsed > 0 else 0.0
    print(
        f"replayed {stored:,} messages in {elapsed:.1f} s ({rate:,.0f} messages/s):"
        f" {unique:,} events ({sla:,} SLA facts) in {target.describe()}"
    )
    if missing:
        shown = "; ".join(
            f"{m.topic}[{m.partition}] {m.stored:,} of {m.in_log:,}" for m in missing[:5]
        )
        raise CommandFailed(
            f"the database does not hold every message of the log: {shown}",
            "run `samt124 replay` again to store what is missing; if it stays, report it",
        )
    print(f"check: all {total:,} messages of the log are in ClickHouse")
    return 0
