"""Freshness: how long one event takes from publish to queryable, on both ClickHouse engines."""

from __future__ import annotations

import time
from functools import partial
from pathlib import Path

from devtools.bench import harness, workload
from devtools.bench.results import Section
from samt124.settings import Settings

POLL = 0.05  # seconds between two queries for the event
PAUSE = 0.5  # seconds between two samples, so that each one meets an idle pipeline


def measure_freshness(base: Settings, server_url: str | None, samples: int, work: Path) -> Section:
    section = Section(
        "freshness",
        "Freshness: publish → queryable, one event at a time",
        f"The worker and the sink run as child processes with their defaults (the sink's batches:"
        f" 20,000 rows or 1 s). After a warm-up, {samples} submissions of new requests are"
        f" published one at a time with `Publisher.publish` ({PAUSE:g} s apart); for each, the"
        f" clock runs from the call to the first query of `events_unique` (every {POLL * 1000:g}"
        " ms, through samt124's engine, as `samt124 sql` would) that finds its `event_id`.",
    )
    engines: list[tuple[str, str]] = []
    if server_url:
        engines.append(
            ("server", server_url.rsplit("/", 1)[0] + f"/bench_fresh_{int(time.time())}")
        )
    engines.append(("chdb", f"chdb://{work / 'fresh-chdb'}"))
    for name, url in engines:
        delays = _delays(
            harness.namespace(base, f"fresh{name}", clickhouse_url=url), samples, work, name
        )
        ordered = sorted(delays)
        section.add(f"{name}: p50", harness.percentile(ordered, 0.5) * 1000, "ms")
        section.add(f"{name}: p90", harness.percentile(ordered, 0.9) * 1000, "ms")
        section.add(f"{name}: max", ordered[-1] * 1000, "ms", f"{len(delays)} events")
    return section


def _delays(settings: Settings, samples: int, work: Path, name: str) -> list[float]:
    from consumers.clickhouse.engine import EngineBusy, opened
    from producers.publisher import Publisher

    target = settings.clickhouse

    def stored(event_id: str) -> bool:
        try:
            with opened(target) as engine:
                sql = (
                    f"SELECT count() FROM {target.database}.events_unique"
                    f" WHERE event_id = '{event_id}'"
                )
                return int(engine.query(sql)[1][0][0]) > 0
        except EngineBusy:
            return False

    harness.topics_ready(settings)
    harness.run(settings, "init", log=work / f"fresh-{name}-init.log")
    worker = harness.start(settings, "worker", log=work / f"fresh-{name}-worker.log")
    sink = harness.start(settings, "sink", log=work / f"fresh-{name}-sink.log")
    delays: list[float] = []
    try:
        with Publisher(settings) as publisher:
            warm = workload.warm_up()
            publisher.publish(warm)
            harness.wait_until(lambda: stored(warm.event_id), 180, "the warm-up", every=POLL)
            for event in workload.submissions(samples):
                time.sleep(PAUSE)
                started = time.monotonic()
                publisher.publish(event)
                harness.wait_until(
                    partial(stored, event.event_id), 60, "an event to be queryable", every=POLL
                )
                delays.append(time.monotonic() - started)
    finally:
        worker.stop()
        sink.stop()
    return delays
