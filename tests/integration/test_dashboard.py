"""The live dashboard in a real headless browser, on a real run of the worker and the sink.

Simulated traffic and a few undecodable messages go through the real worker and sink into the
ClickHouse server; ``samt124 dashboard`` serves the page and Debian's Chromium (driven by
Playwright, with ``executable_path``: nothing is downloaded) opens it. The figures the page
shows must equal those ``samt124 report`` prints for the same data, the open requests and the
requests by channel must equal a recomputation from the published events, the dead letters the
undecodable messages sent; then new submissions are published and the page, without being
reloaded, must show them and still agree with the reports.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jdatetime
import pytest

from consumers.clickhouse.engine import opened
from consumers.clickhouse.migrations import migrate
from producers.simulator import simulate
from samt124.contract import wire
from samt124.domain.events import Event
from samt124.domain.tehran_time import tehran
from samt124.kafka.admin import ensure_topics
from samt124.kafka.topics import Topics
from samt124.settings import Settings
from tests.integration.pipeline import Process, env_for, produce_raw, start, submission, wait_for
from tests.integration.test_reports import Request, fold

pytestmark = pytest.mark.integration

CHROMIUM = Path("/usr/bin/chromium")
PERSIAN_DIGITS = str.maketrans("۰۱۲۳۴۵۶۷۸۹٬٫", "0123456789,.")
CARDS = {
    "open": ("backlog", "open"),
    "past_first_response": ("backlog", "past_first_response"),
    "past_resolution": ("backlog", "past_resolution"),
    "past_operational": ("backlog", "past_operational"),
    "breaches_today": ("breaches", "today"),
    "breaches_week": ("breaches", "week"),
}
GARBAGE: list[tuple[bytes | None, bytes]] = [
    (b"junk-1", b"\x00not avro"),
    (b"junk-2", b""),
    (b"junk-3", b"{}"),
]
NEW_SUBMISSIONS = 25
EPOCH = "1970-01-01T00:00:00+00:00"


def is_open(request: Request) -> bool:
    return request.status[1] not in ("RequestResolved", "RequestClosed")


@dataclass
class Live:
    settings: Settings
    url: str  # the dashboard's
    events: list[Event]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def publish(settings: Settings, events: Sequence[Event]) -> None:
    topic = Topics(settings.topic_namespace).intake
    produce_raw(settings, topic, [(wire.key(e), wire.encode(e)) for e in events])


def stored_requests(settings: Settings) -> int:
    with opened(settings.clickhouse, readonly=True) as engine:
        return int(engine.query(f"SELECT count() FROM {engine.database}.requests")[1][0][0])


def stored_events(settings: Settings) -> int:
    with opened(settings.clickhouse, readonly=True) as engine:
        sql = f"SELECT count() FROM {engine.database}.events_unique"
        return int(engine.query(sql)[1][0][0])


def settled(settings: Settings, requests: int) -> None:
    """Wait until every request is stored and nothing more arrives for a few seconds."""
    wait_for(lambda: stored_requests(settings) >= requests, 240, f"{requests} requests stored")
    last, quiet = -1, 0
    deadline = time.monotonic() + 120
    while quiet < 4 and time.monotonic() < deadline:
        now = stored_events(settings)
        quiet = quiet + 1 if now == last else 0
        last = now
        time.sleep(1.0)
    assert stored_requests(settings) == requests


@pytest.fixture
def live(settings: Settings, server_url: str, tmp_path: Path) -> Iterator[Live]:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is not installed (make system installs Debian's chromium)")
    settings = settings.model_copy(update={"clickhouse_url": server_url})
    ensure_topics(settings)
    with opened(settings.clickhouse) as engine:
        migrate(engine)
    now = datetime.now(UTC)
    events = [
        e
        for e in simulate(17, 1_500, now - timedelta(hours=30), requests_per_day=3_000)
        if e.occurred_at <= now - timedelta(minutes=1)
    ]
    processes: list[Process] = [
        start(settings, "worker", log=tmp_path / "worker.log"),
        start(settings, "sink", "--max-wait", "0.3", log=tmp_path / "sink.log"),
    ]
    try:
        publish(settings, events)
        produce_raw(settings, Topics(settings.topic_namespace).intake, GARBAGE)
        settled(settings, len(fold(events)))
        port = free_port()
        board = start(
            settings,
            "dashboard",
            "--listen",
            f"127.0.0.1:{port}",
            "--refresh",
            "1",
            log=tmp_path / "dashboard.log",
        )
        processes.append(board)
        wait_for(lambda: "dashboard: http" in board.output(), 120, "the dashboard to serve")
        yield Live(settings, f"http://127.0.0.1:{port}/", events)
    finally:
        for process in reversed(processes):
            process.stop()


# -- what samt124 report prints, folded here (not with the dashboard's code) -------------------


def report(settings: Settings, name: str, *args: str) -> list[dict[str, Any]]:
    done = subprocess.run(
        [sys.executable, "-m", "samt124.cli", "report", name, *args, "--format", "json"],
        env=env_for(settings),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    rows: list[dict[str, Any]] = json.loads(done.stdout)
    return rows


def jalali_date(day: jdatetime.date) -> str:
    return f"{day.year:04d}-{day.month:02d}-{day.day:02d}"


def from_reports(settings: Settings) -> dict[str, Any]:
    """The figures the page shows, as ``samt124 report`` gives them now."""
    today = jdatetime.date.fromgregorian(date=tehran(datetime.now(UTC)).date())
    saturday = today - timedelta(days=today.weekday())
    backlog: dict[str, Counter[str]] = defaultdict(Counter)
    for row in report(settings, "backlog"):
        backlog[row["province"]]["open"] += row["open_requests"]
        for clock in ("first_response", "resolution", "operational"):
            backlog[row["province"]][f"past_{clock}"] += row[f"past_{clock}_deadline"]
    national = sum(backlog.values(), Counter())
    breaches: dict[str, Counter[str]] = {"today": Counter(), "week": Counter()}
    for period, since in (("today", today), ("week", saturday)):
        for row in report(settings, "heatmap", "--since", jalali_date(since)):
            breaches[period][row["province"]] += row["breaches"]
    channels: Counter[str] = Counter()
    for row in report(settings, "volume"):
        channels[row["channel"]] += row["requests"]
    on_time = {
        row["province"]: (
            row["requests"],
            row["resolution_on_time_percent"],
            row["first_response_on_time_percent"],
        )
        for row in report(settings, "sla")
    }
    alborz = {
        row["body"]: (
            row["requests"],
            row["resolution_on_time_percent"],
            row["first_response_on_time_percent"],
        )
        for row in report(settings, "sla", "--by", "body", "--province", "IR-30")
    }
    return {
        "cards": {
            **{key: national[key] for key in ("open", *(k for k in CARDS if k.startswith("past")))},
            "breaches_today": sum(breaches["today"].values()),
            "breaches_week": sum(breaches["week"].values()),
        },
        "backlog": {province: dict(counts) for province, counts in backlog.items()},
        "breaches_week": dict(breaches["week"]),
        "breaches_today": {p: n for p, n in breaches["today"].items() if n},
        "channels": dict(channels),
        "on_time": on_time,
        "alborz": alborz,
    }


# -- what the page shows ------------------------------------------------------------------------

READ_PAGE = """() => {
  const rows = (id) => [...document.querySelectorAll(`#${id} tbody tr`)].map(
    (tr) => [...tr.querySelectorAll("td")].map((td) => td.dataset.value));
  const cards = {};
  for (const id of ["open", "past_first_response", "past_resolution", "past_operational",
                    "breaches_today", "breaches_week", "lag_total", "dead_total"]) {
    const el = document.getElementById(id);
    cards[id] = [el.textContent, el.dataset.value];
  }
  return {cards, asof: document.getElementById("asof").textContent,
          utc: document.getElementById("asof").dataset.utc,
          tables: Object.fromEntries(["backlog", "breaches", "on_time", "alborz", "channels",
                                      "oldest", "dead", "lag"].map((id) => [id, rows(id)]))};
}"""


def number(text: str) -> float:
    return float(text.translate(PERSIAN_DIGITS).replace(",", ""))


def on_page(page: Any) -> dict[str, Any]:
    shown = page.evaluate(READ_PAGE)
    cards = {}
    for key, (text, value) in shown["cards"].items():
        if value != "":
            assert number(text) == float(value), f"{key} reads {text!r}, holds {value}"
            cards[key] = float(value)
    tables = shown["tables"]
    return {
        "utc": shown["utc"],
        "asof": shown["asof"],
        "cards": cards,
        "backlog": {
            r[0]: {
                "open": int(r[1]),
                "past_first_response": int(r[2]),
                "past_resolution": int(r[3]),
                "past_operational": int(r[4]),
            }
            for r in tables["backlog"]
        },
        "breaches_week": {r[0]: int(r[2]) for r in tables["breaches"]},
        "breaches_today": {r[0]: int(r[1]) for r in tables["breaches"] if int(r[1])},
        "channels": {r[0]: int(r[1]) for r in tables["channels"]},
        "on_time": {r[0]: (int(r[1]), float(r[2]), float(r[3])) for r in tables["on_time"]},
        "alborz": {r[0]: (int(r[1]), float(r[2]), float(r[3])) for r in tables["alborz"]},
        "oldest": tables["oldest"],
        "dead": {r[0]: int(r[1]) for r in tables["dead"]},
        "lag": tables["lag"],
    }


def shown_at(page: Any) -> datetime:
    """The instant of the snapshot the page shows."""
    return datetime.fromisoformat(page.get_attribute("#asof", "data-utc") or EPOCH)


def refreshed_since(page: Any, asked: datetime) -> None:
    wait_for(lambda: shown_at(page) > asked, 60, "a refresh after the reports were read")


def agreeing(page: Any, settings: Settings) -> tuple[dict[str, Any], dict[str, Any]]:
    """The page and the reports at one moment: reports read before and after a page refreshed
    between them must be equal (else the data moved: try again)."""
    for _ in range(6):
        asked = datetime.now(UTC)
        before = from_reports(settings)
        refreshed_since(page, asked)
        shown = on_page(page)
        after = from_reports(settings)
        if before == after:
            return shown, after
    raise AssertionError("the data kept moving: no two report readings agreed")


def compare(shown: dict[str, Any], reported: dict[str, Any]) -> None:
    for key, value in reported["cards"].items():
        assert shown["cards"][key] == value, key
    for key in ("backlog", "breaches_week", "breaches_today", "channels", "on_time", "alborz"):
        assert shown[key] == reported[key], key


def test_the_page_shows_the_reports_figures_and_follows_new_events(live: Live) -> None:
    from playwright.sync_api import sync_playwright

    settings = live.settings
    requests = fold(live.events)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            page = browser.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.on("requestfailed", lambda request: errors.append(request.url))
            asked: list[str] = []
            page.on("request", lambda request: asked.append(request.url))
            page.goto(live.url)
            page.wait_for_selector("#open[data-value]")
            assert page.evaluate("document.documentElement.dir") == "rtl"

            shown, reported = agreeing(page, settings)
            compare(shown, reported)
            # independent of the reports: the published events themselves
            assert shown["cards"]["open"] == sum(map(is_open, requests.values())) > 0
            assert shown["channels"] == Counter(r.channel for r in requests.values())
            assert shown["cards"]["dead_total"] == len(GARBAGE)
            assert sum(shown["dead"].values()) == len(GARBAGE)
            # Persian by default: digits and the Jalali date of the moment
            assert any(digit in shown["asof"] for digit in "۰۱۲۳۴۵۶۷۸۹")
            listed = shown["oldest"]
            past_any = (
                reported["cards"]["past_first_response"] + reported["cards"]["past_resolution"]
            )
            assert bool(listed) == bool(past_any + reported["cards"]["past_operational"])
            groups = {row[0] for row in shown["lag"]}
            assert f"{settings.topic_namespace}-worker" in groups

            page.click("#lang")
            assert page.evaluate("document.documentElement.dir") == "ltr"
            english = page.text_content("#asof") or ""
            assert english.startswith("as of ")
            assert "(Asia/Tehran)" in english
            assert ", lag " in english
            assert (page.text_content("#open") or "").replace(",", "") == str(
                int(shown["cards"]["open"])
            )

            refreshed = page.get_attribute("body", "data-refreshed")
            fresh = [submission(province="IR-30") for _ in range(NEW_SUBMISSIONS)]
            publish(settings, fresh)
            settled(settings, len(requests) + NEW_SUBMISSIONS)
            shown_after, reported_after = agreeing(page, settings)
            compare(shown_after, reported_after)
            assert shown_after["cards"]["open"] == shown["cards"]["open"] + NEW_SUBMISSIONS
            assert shown_after["backlog"]["IR-30"]["open"] == (
                shown["backlog"].get("IR-30", {}).get("open", 0) + NEW_SUBMISSIONS
            )
            assert page.get_attribute("body", "data-refreshed") != refreshed
            assert page.url.startswith(live.url)  # the same page, never reloaded
            assert errors == []
            assert {url for url in asked if not url.startswith(live.url)} == set()
        finally:
            browser.close()


def test_dead_letters_are_counted_from_a_loaded_table_by_kind_once_per_place(
    server_url: str,
) -> None:
    """Once ClickHouse holds the ``dead_letters`` table (the sink's load of the dead-letter
    topic), the dashboard counts it by reason kind, a message stored twice once."""
    from dashboard.reading import dead_letter_table
    from samt124.settings import parse_clickhouse_url

    target = parse_clickhouse_url(server_url)
    with opened(target) as engine:
        assert dead_letter_table(engine) is None  # not loaded: the page says so
        migrate(engine)  # the sink's dead_letters table (migration 004)
        rows = [
            ("t.dlq", 0, 1, "invalid RequestSubmitted: province", "invalid"),
            ("t.dlq", 0, 1, "invalid RequestSubmitted: province", "invalid"),  # stored twice
            ("t.dlq", 0, 2, "invalid RequestResolved: actor", "invalid"),
            ("t.dlq", 1, 7, "undecodable: not Avro", "undecodable"),
        ]
        columns = ("topic", "partition", "offset", "reason", "reason_kind")
        engine.insert("dead_letters", columns, rows, dedup_token=None)
        assert dead_letter_table(engine) == [("invalid", 2), ("undecodable", 1)]
