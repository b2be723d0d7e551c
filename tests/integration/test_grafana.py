"""Grafana as code: the provisioning fits docker-compose.yml and Prometheus' configuration, every
ClickHouse panel's SQL runs on the real ClickHouse server (Grafana's macros filled in as the
grafana-clickhouse-datasource plugin fills them), the ministry's headline panels equal figures
recomputed from the raw events or, for what is past a deadline, ``samt124 report`` at the same
instant, and every PromQL expression parses (``promtool``)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import uuid
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from consumers.analytics import reports
from consumers.clickhouse.dead_letters import DEAD_LETTER_COLUMNS
from consumers.clickhouse.engine import Engine, opened
from consumers.clickhouse.migrations import migrate
from consumers.sink.dead_letters import dead_letter_row
from consumers.sink.loader import Message, build_batch, store
from consumers.sink.rows import Position
from dashboard.figures import today_start, week_start
from producers.simulator import simulate
from samt124.contract import wire
from samt124.domain.events import Event, event_type
from samt124.domain.lifecycle import RequestState
from samt124.domain.routing import referral_bodies
from samt124.kafka.topics import Topics, partition_of
from samt124.settings import Settings, parse_clickhouse_url
from streams.pipeline import Pipeline, Where
from tests.integration.test_compose import SECRETS, compose_config

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]
DASHBOARDS = REPO / "deploy" / "grafana" / "dashboards"
PROVISIONING = REPO / "deploy" / "grafana" / "provisioning"
CLICKHOUSE = "grafana-clickhouse-datasource"
EVENTS = 3_000


def dashboards() -> dict[str, dict[str, Any]]:
    return {path.stem: json.loads(path.read_text()) for path in sorted(DASHBOARDS.glob("*.json"))}


def targets(kind: str) -> list[tuple[str, str, dict[str, Any]]]:
    """(dashboard, panel title, target) of every target of the given data source type."""
    return [
        (name, panel["title"], target)
        for name, board in dashboards().items()
        for panel in board["panels"]
        for target in panel["targets"]
        if target["datasource"]["type"] == kind
    ]


def grafana_sql(sql: str, database: str, start: datetime, end: datetime) -> str:
    """The SQL as the plugin sends it: its macros filled in, the database named."""
    since, until = int(start.timestamp()), int(end.timestamp())
    text = re.sub(
        r"\$__timeFilter\(([^)]+)\)",
        rf"\1 >= toDateTime({since}) AND \1 <= toDateTime({until})",
        sql,
    )
    text = text.replace("$__fromTime", f"toDateTime({since})")
    text = text.replace("$__toTime", f"toDateTime({until})")
    assert "$" not in text, f"a macro the test does not know in: {sql}"
    return text.replace("samt124.", f"{database}.")


def stored_events(engine: Engine, now: datetime) -> list[Event]:
    """Simulated traffic of the last days through the worker's own decisions (its referrals
    and the clocks' deadlines facts; no timer, so no breach fact at all), into ClickHouse
    through the sink's own mapping."""
    topics = Topics()
    pipeline = Pipeline.load(Settings())
    simulated = simulate(  # two weeks up to now: resolved requests, and breaches this week
        11,
        EVENTS,
        now - timedelta(days=14),
        requests_per_day=150,
        closure_probability=0,
        body_for=referral_bodies(),
    )
    events = [e for e in simulated if e.occurred_at <= now]
    states: dict[str, RequestState] = {}
    messages: list[Message] = []
    for event in events:
        key = wire.key(event)
        where = Where(topics.intake, partition_of(key, pipeline.partitions), 0)
        stored = states.get(event.request_id)
        step = pipeline.on_intake(stored, key, wire.encode(event), [], where, now)
        assert step.dead_letter is None, step.dead_letter
        if step.state is not None:
            states[event.request_id] = step.state
        for out in step.outgoing:
            if out.topic != topics.sla:  # the timers' facts are left out: none is needed
                messages.append(Message(Position(out.topic, 0, len(messages)), out.value))
    store(engine, build_batch(messages, topics, now, b""))
    return events


def expected(engine: Engine, now: datetime) -> dict[str, Any]:
    """The ministry's headline figures as ``samt124 report`` gives them at ``now``."""
    params = reports.ReportParams(as_of=now)
    overdue = sorted(
        (r.clocks["resolution"].deadline_us or 0, r.request_id)
        for r in reports.open_at(engine, params)
        if r.past["resolution"] is not None
    )
    breaches = {
        period: len(reports.breaches_at(engine, replace(params, since=start(now))))
        for period, start in (("today", today_start), ("week", week_start))
    }
    _, sla = reports.run(engine, "sla", params)
    on_time = {
        str(row[0]): 100 * int(str(row[3])) / int(str(row[2])) for row in sla if int(str(row[2]))
    }
    return {
        "overdue": len(overdue),
        "oldest": [request_id for _, request_id in overdue][:20],
        "today": breaches["today"],
        "week": breaches["week"],
        "on_time": on_time,
    }


def open_requests(events: list[Event]) -> set[str]:
    """Requests whose last submission, resolution, closing or reopening is not a resolution
    or a closing (recomputed from the raw events, as the requests view should)."""
    status_events = (
        "RequestSubmitted",
        "LetterRegistered",
        "RequestResolved",
        "RequestClosed",
        "RequestReopened",
    )
    last: dict[str, tuple[datetime, str]] = {}
    submitted = set()
    for event in events:
        kind = event_type(event)
        if kind in ("RequestSubmitted", "LetterRegistered"):
            submitted.add(event.request_id)
        if kind in status_events:
            seen = last.get(event.request_id)
            if seen is None or event.occurred_at >= seen[0]:
                last[event.request_id] = (event.occurred_at, kind)
    return {
        rid
        for rid, (_, kind) in last.items()
        if rid in submitted and kind not in ("RequestResolved", "RequestClosed")
    }


def test_every_clickhouse_panel_runs_on_the_server_and_the_headlines_add_up(
    server_url: str,
) -> None:
    target = parse_clickhouse_url(server_url)
    now = datetime.now(UTC).replace(microsecond=0)
    with opened(target) as engine:
        migrate(engine)
        events = stored_events(engine, now)
        dead = [
            dead_letter_row(
                Position("samt124.dlq", 0, offset),
                None,
                b"\x00bad",
                [("dlq-reason", reason.encode()), ("dlq-at", now.isoformat().encode())],
                now,
                now,
            )
            for offset, reason in enumerate(
                ["bad marker 0000", "bad marker 0000", "invalid RequestSubmitted: province"]
            )
        ]
        engine.insert("dead_letters", DEAD_LETTER_COLUMNS, dead, None)
    results: dict[str, tuple[list[str], list[tuple[Any, ...]]]] = {}
    panels = targets(CLICKHOUSE)
    assert len(panels) >= 10
    with opened(target, readonly=True) as reader:
        # the panels run at the server's now, between these two instants of the reports
        before = expected(reader, datetime.now(UTC))
        for board, title, query in panels:
            sql = grafana_sql(query["rawSql"], target.database, now - timedelta(days=15), now)
            results[f"{board}: {title}"] = reader.query(sql)
        after = expected(reader, datetime.now(UTC))

    def between(name: str, got: object) -> None:
        assert before[name] <= int(str(got)) <= after[name], (name, before[name], after[name])

    opened_now = open_requests(events)
    assert opened_now, "the simulated traffic leaves requests open"
    [[national]] = results["ministry: Open requests, nationally"][1]
    assert int(national) == len(opened_now)
    _, by_province = results["ministry: Backlog by province"]
    assert sum(int(n) for _, n in by_province) == len(opened_now)
    # past a deadline, from the clocks at the instant, as the reports count it (no breach fact
    # was stored)
    [[overdue]] = results["ministry: Open past their resolution deadline"][1]
    between("overdue", overdue)
    assert int(overdue) > 0
    [[today, week]] = results["ministry: Breaches today and this Jalali week"][1]
    between("today", today)
    between("week", week)
    assert int(week) > 0
    # a deadline that passes while the panels run changes a province's share: the panel's is the
    # share at its own instant, so it lies between the reports' before and after (to its 0.1)
    on_time = {
        str(p): float(percent)
        for p, _, percent in results["ministry: Resolution on time by province"][1]
    }
    assert set(on_time) in (set(before["on_time"]), set(after["on_time"]))
    for province, percent in on_time.items():
        bounds = [at["on_time"][province] for at in (before, after) if province in at["on_time"]]
        assert min(bounds) - 0.051 <= percent <= max(bounds) + 0.051, (province, percent, bounds)
    hourly = results["ministry: Breaches per hour"][1]
    assert sum(int(n) for *_, n in hourly) >= int(week)  # the 15 days shown hold the week
    channels = Counter(
        getattr(e, "channel", "SECRETARIAT")
        for e in events
        if event_type(e) in ("RequestSubmitted", "LetterRegistered")
    )
    assert dict((str(c), int(n)) for c, n in results["ministry: Volume by channel"][1]) == dict(
        channels
    )
    oldest = results["ministry: Oldest overdue requests and who holds them"][1]
    assert [row[0] for row in oldest] == after["oldest"]
    kinds = dict(results["ministry: Dead letters by kind"][1])
    assert kinds == {"undecodable": 2, "invalid": 1}


def test_every_promql_expression_parses() -> None:
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: install Debian's prometheus package"
    exprs = [(f"{board}: {title}", t["expr"]) for board, title, t in targets("prometheus")]
    assert len(exprs) >= 10
    rules = {
        "groups": [
            {
                "name": "grafana-panels",
                "rules": [
                    {"record": f"samt124:panel_{n}", "expr": expr}
                    for n, (_, expr) in enumerate(exprs)
                ],
            }
        ]
    }
    path = Path(REPO / ".samt124" / f"grafana-panels-{uuid.uuid4().hex[:8]}.yml")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(rules))
    try:
        done = subprocess.run(
            [promtool, "check", "rules", str(path)],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    finally:
        path.unlink()
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(exprs)} rules found" in done.stdout


def mount(volume: str | dict[str, str]) -> tuple[str, str]:
    """(target, source) of a volume as Compose resolves it (short or long syntax)."""
    if isinstance(volume, dict):
        return str(volume["target"]), str(volume.get("source", ""))
    source, target, *_ = volume.split(":")
    return target, source


def test_provisioning_fits_compose_and_prometheus() -> None:
    result = compose_config(SECRETS)
    assert result.returncode == 0, result.stderr
    services = yaml.safe_load(result.stdout)["services"]
    grafana, prometheus = services["grafana"], services["prometheus"]
    assert CLICKHOUSE in grafana["environment"]["GF_INSTALL_PLUGINS"]
    mounts = dict(mount(v) for v in grafana["volumes"])
    assert mounts["/etc/grafana/provisioning"] == str(PROVISIONING)
    assert mounts["/var/lib/grafana/dashboards"] == str(DASHBOARDS)
    provider = yaml.safe_load((PROVISIONING / "dashboards" / "samt124.yml").read_text())
    assert provider["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"
    sources = yaml.safe_load((PROVISIONING / "datasources" / "samt124.yml").read_text())
    uids = {s["uid"]: s["type"] for s in sources["datasources"]}
    used = {
        (t["datasource"]["uid"], t["datasource"]["type"])
        for board in dashboards().values()
        for panel in board["panels"]
        for t in [*panel["targets"], {"datasource": panel["datasource"]}]
    }
    assert used <= set(uids.items())
    assert set(dashboards()) == {"operations", "ministry"}

    config = yaml.safe_load((REPO / "deploy" / "prometheus" / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert set(jobs) == {"samt124-worker", "samt124-sink", "samt124-api", "samt124-lag"}
    port = services["worker"]["environment"]["SAMT124_METRICS_PORT"]
    assert services["sink"]["environment"]["SAMT124_METRICS_PORT"] == port
    assert services["api"]["environment"]["SAMT124_METRICS_PORT"] == port
    assert jobs["samt124-api"]["static_configs"][0]["targets"] == [f"api:{port}"]
    assert jobs["samt124-worker"]["dns_sd_configs"][0]["port"] == int(port)
    assert jobs["samt124-sink"]["static_configs"][0]["targets"] == [f"sink:{port}"]
    assert jobs["samt124-lag"]["static_configs"][0]["targets"] == ["lag-exporter:9308"]
    assert "--serve" in services["lag-exporter"]["command"]
    assert any("rules.yml" in str(v) for v in prometheus["volumes"])
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: install Debian's prometheus package"
    checked = subprocess.run(
        [promtool, "check", "config", str(REPO / "deploy" / "prometheus" / "prometheus.yml")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
