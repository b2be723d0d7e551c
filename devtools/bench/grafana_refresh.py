"""What a refresh of the ministry's Grafana dashboard costs ClickHouse, with N events stored.

``python -m devtools.bench.grafana_refresh --clickhouse-url clickhouse://default:@127.0.0.1:19000
--events 1000000 --output benchmarks/GRAFANA.md`` creates a database of its own on the server,
stores simulated traffic (and a resolution breach for one request in twenty) through the sink's
row mapping, then runs every ClickHouse panel of ``deploy/grafana/dashboards/ministry.json``
(Grafana's macros filled in for the last 7 days) once to warm up and ``--refreshes`` times,
and writes the median milliseconds per panel and per refresh, with the command and the server's
version. The database is dropped at the end unless ``--keep``.
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from consumers.clickhouse.engine import Engine, opened
from consumers.clickhouse.migrations import migrate
from consumers.sink.rows import EVENT_COLUMNS, SLA_COLUMNS, Position, event_row, sla_row
from producers.simulator import simulate
from samt124.domain.events import SlaBreached, event_type
from samt124.kafka.topics import Topics
from samt124.settings import parse_clickhouse_url

REPO = Path(__file__).resolve().parents[2]
MINISTRY = REPO / "deploy" / "grafana" / "dashboards" / "ministry.json"
CHUNK = 50_000


def panel_sql(sql: str, database: str, start: datetime, end: datetime) -> str:
    since, until = int(start.timestamp()), int(end.timestamp())
    text = re.sub(
        r"\$__timeFilter\(([^)]+)\)",
        rf"\1 >= toDateTime({since}) AND \1 <= toDateTime({until})",
        sql,
    )
    text = text.replace("$__fromTime", f"toDateTime({since})")
    text = text.replace("$__toTime", f"toDateTime({until})")
    return text.replace("samt124.", f"{database}.")


def load(engine: Engine, count: int, now: datetime) -> tuple[int, int]:
    """Simulated traffic ending about now (its length estimated from a dry run of a 20th of
    it; events after now are left out), and breaches; returns (events, breaches) stored."""
    topics = Topics()
    probe = now - timedelta(days=365)
    last = probe
    sample = max(1, count // 20)
    for event in simulate(3, sample, probe):  # a dry run of a 20th: how long the traffic lasts
        last = event.occurred_at
    span = (last - probe) * (count / sample) * 1.03
    province: dict[str, str] = {}
    events: list[tuple[object, ...]] = []
    facts: list[tuple[object, ...]] = []
    stored = breaches = 0
    for offset, event in enumerate(simulate(3, count, now - span)):
        if event.occurred_at > now:
            continue
        code = getattr(event, "province", None) or province.get(event.request_id, "IR-23")
        province.setdefault(event.request_id, code)
        position = Position(topics.province(code), 0, offset)
        events.append(event_row(event, position, code, now, b""))
        if event_type(event) == "RequestSubmitted" and offset % 20 == 0:
            breach = SlaBreached(
                event_id=str(uuid.uuid4()),
                request_id=event.request_id,
                occurred_at=event.occurred_at + timedelta(hours=40),
                recorded_at=now,
                source="samt124-sla",
                clock="RESOLUTION",
                cycle=1,
                due_at=event.occurred_at + timedelta(hours=40),
                body_id=f"samt-org:{code}",
                province=code,
                policy_id="normal",
                policy_version="1404.1",
            )
            if breach.occurred_at <= now:
                facts.append(sla_row(breach, now))
                events.append(event_row(breach, Position(topics.sla, 0, offset), code, now, b""))
        if len(events) >= CHUNK:
            engine.insert("events", EVENT_COLUMNS, events, None)
            stored += len(events)
            events = []
        if len(facts) >= CHUNK:
            engine.insert("sla_events", SLA_COLUMNS, facts, None)
            breaches += len(facts)
            facts = []
    engine.insert("events", EVENT_COLUMNS, events, None)
    engine.insert("sla_events", SLA_COLUMNS, facts, None)
    return stored + len(events), breaches + len(facts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clickhouse-url", required=True)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--refreshes", type=int, default=5)
    parser.add_argument("--output", type=Path)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args(argv)
    base = parse_clickhouse_url(args.clickhouse_url)
    database = f"bench_grafana_{uuid.uuid4().hex[:8]}"
    target = base.model_copy(update={"database": database})
    board = json.loads(MINISTRY.read_text())
    panels = [
        (panel["title"], target_["rawSql"])
        for panel in board["panels"]
        for target_ in panel["targets"]
        if target_["datasource"]["type"] == "grafana-clickhouse-datasource"
    ]
    now = datetime.now(UTC).replace(microsecond=0)
    with opened(target) as engine:
        migrate(engine)
        version = ".".join(map(str, engine.version))
        started = time.monotonic()
        stored, breaches = load(engine, args.events, now)
        load_seconds = time.monotonic() - started
        try:
            timings: dict[str, list[float]] = {title: [] for title, _ in panels}
            totals: list[float] = []
            for refresh in range(args.refreshes + 1):
                total = 0.0
                for title, sql in panels:
                    text = panel_sql(sql, database, now - timedelta(days=7), now)
                    began = time.perf_counter()
                    engine.query(text)
                    spent = (time.perf_counter() - began) * 1000
                    total += spent
                    if refresh:
                        timings[title].append(spent)
                if refresh:
                    totals.append(total)
        finally:
            if not args.keep:
                engine.execute(f"DROP DATABASE IF EXISTS {database}")
    command = "python -m devtools.bench.grafana_refresh " + shlex.join(
        a if not a.startswith("clickhouse") else re.sub(r"//[^@]*@", "//", a)
        for a in (argv if argv is not None else sys.argv[1:])
    )
    lines = [
        "# Ministry dashboard (Grafana): ClickHouse cost of one refresh",
        "",
        f"Command: `{command}`",
        f"Date: {now.isoformat()}; ClickHouse server {version}; {stored:,} events stored"
        f" ({breaches:,} resolution breaches among them), loaded in {load_seconds:.0f} s.",
        f"{len(panels)} ClickHouse queries per refresh (one per panel; the lag panel reads"
        f" Prometheus); median of {args.refreshes} refreshes after one to warm up.",
        "",
        "| panel | median ms |",
        "| --- | ---: |",
        *(f"| {title} | {statistics.median(ms):,.0f} |" for title, ms in timings.items()),
        f"| **one refresh, all panels in turn** | **{statistics.median(totals):,.0f}** |",
        "",
    ]
    text = "\n".join(lines)
    if args.output:
        args.output.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
