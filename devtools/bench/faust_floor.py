"""The Faust floor: what a minimal faust-streaming agent does on the benchmark's broker.

Two agents, each in a child process of its own (``python -m devtools.bench.faust_floor``):

* ``copy``: raw bytes in, the same bytes out, ``take_events(1000)`` batches, the batch's sends
  handed to the producer together and awaited once per batch;
* ``table``: the same, plus a write per key into a Faust table, one changelog record per key
  per batch (the shape of the worker's state writes).

No decoding and no decisions: the best Faust itself does here, the anchor for the worker. The
child writes its figures (events, seconds from first event to last delivered send, CPU seconds)
as JSON and stops itself.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devtools.bench.harness import BenchError
from samt124.settings import Settings

BATCH = 1_000
WITHIN = 0.05  # seconds: take_events' time bound
MODES = ("copy", "table")


@dataclass(frozen=True)
class FloorRun:
    mode: str
    events: int
    seconds: float
    cpu_seconds: float

    @property
    def per_second(self) -> float:
        return self.events / self.seconds

    @property
    def cpu_us_per_event(self) -> float:
        return self.cpu_seconds / self.events * 1e6


def measure(
    settings: Settings, source: str, target: str, count: int, mode: str, work: Path
) -> FloorRun:
    """Run the ``mode`` agent over ``count`` events already on ``source``; its figures."""
    result = work / f"faust-floor-{mode}.json"
    result.unlink(missing_ok=True)
    log = work / f"faust-floor-{mode}.log"
    command = [
        sys.executable,
        "-m",
        "devtools.bench.faust_floor",
        "--bootstrap",
        settings.bootstrap,
        "--source",
        source,
        "--target",
        target,
        "--count",
        str(count),
        "--mode",
        mode,
        "--partitions",
        str(settings.partitions),
        "--datadir",
        str(work / f"faust-floor-{mode}"),
        "--result",
        str(result),
    ]
    with log.open("wb") as out:
        done = subprocess.run(
            command, stdout=out, stderr=subprocess.STDOUT, timeout=3600, check=False
        )
    if not result.exists():
        tail = log.read_text(errors="replace")[-2000:]
        raise BenchError(f"the Faust {mode} agent exited {done.returncode} without figures: {tail}")
    figures = json.loads(result.read_text())
    return FloorRun(mode, figures["events"], figures["seconds"], figures["cpu_seconds"])


def _app(args: argparse.Namespace) -> Any:
    import faust

    app = faust.App(
        f"bench-faust-floor-{args.mode}-{os.getpid()}",
        broker=f"kafka://{args.bootstrap}",
        store="memory://",
        datadir=args.datadir,
        topic_partitions=args.partitions,
        topic_replication_factor=1,
        consumer_auto_offset_reset="earliest",
        key_serializer="raw",
        value_serializer="raw",
        producer_acks=-1,
        producer_linger_ms=5,
        producer_max_batch_size=512 * 1024,
        stream_wait_empty=False,
        table_standby_replicas=0,
        web_enabled=False,
    )
    source = app.topic(args.source, key_type=bytes, value_type=bytes)
    target = app.topic(args.target, key_type=bytes, value_type=bytes)
    table = None
    if args.mode == "table":
        table = app.Table(
            "floor", default=None, partitions=args.partitions, key_type=bytes, value_type=bytes
        )
    seen = 0
    batches = 0
    first: tuple[float, float] | None = None

    @app.agent(source, name="floor")  # type: ignore[untyped-decorator]
    async def floor(stream: Any) -> None:
        nonlocal seen, batches, first
        async for events in stream.take_events(BATCH, within=WITHIN):
            if first is None:
                first = (time.monotonic(), time.process_time())
            sends = []
            latest: dict[bytes, tuple[bytes, int]] = {}
            for event in events:
                message = event.message
                sends.append(
                    await target.send(
                        key=message.key, value=message.value, partition=message.partition
                    )
                )
                latest[message.key] = (message.value, message.partition)
            if table is not None:
                changelog = table.changelog_topic
                for key, (value, partition) in latest.items():
                    table.data[key] = value
                    await changelog.send(key=key, value=value, partition=partition)
            for sent in sends:
                await sent
            seen += len(events)
            batches += 1
            if seen >= args.count:
                await app.producer.flush()
                assert first is not None
                wall, cpu = time.monotonic() - first[0], time.process_time() - first[1]
                Path(args.result).write_text(
                    json.dumps(
                        {"events": seen, "batches": batches, "seconds": wall, "cpu_seconds": cpu}
                    )
                )
                os.kill(os.getpid(), signal.SIGTERM)
                return

    return app


def main(argv: list[str] | None = None) -> int:
    import faust

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--source", required=True)
    parser.add_argument("--target", required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--mode", choices=MODES, required=True)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--datadir", required=True)
    parser.add_argument("--result", required=True)
    args = parser.parse_args(argv)
    app = _app(args)
    worker = faust.Worker(app, loglevel="warning", quiet=True)
    worker.execute_from_commandline()
    return 0 if Path(args.result).exists() else 1


if __name__ == "__main__":
    sys.exit(main())
