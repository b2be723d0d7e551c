"""Dead letters end to end: the real worker dead-letters bad intake, the sink loads
``samt124.dlq`` into ``dead_letters`` on the real ClickHouse server, ``samt124 dlq`` lists and
shows them, and a fixed one replayed through ``samt124 dlq replay`` is routed."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from consumers.clickhouse.engine import opened
from consumers.clickhouse.migrations import migrate
from samt124.contract import wire
from samt124.domain.events import RequestReferred, RequestSubmitted
from samt124.kafka.reader import Record, read_topics
from samt124.kafka.topics import Topics
from samt124.settings import Settings, parse_clickhouse_url
from tests.integration.pipeline import (
    Process,
    env_for,
    produce_raw,
    start,
    submission,
    wait_for,
)

pytestmark = pytest.mark.integration


def cli(settings: Settings, url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "samt124.cli", *args],
        env=env_for(settings, SAMT124_CLICKHOUSE_URL=url),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def listed(settings: Settings, url: str, *filters: str) -> list[dict[str, object]]:
    done = cli(settings, url, "dlq", "list", "--format", "json", *filters)
    assert done.returncode == 0, done.stderr
    return list(json.loads(done.stdout))


def test_a_dead_letter_is_loaded_listed_shown_fixed_and_replayed_into_the_pipeline(
    settings: Settings, worker: Process, server_url: str, tmp_path: Path
) -> None:
    topics = Topics(settings.topic_namespace)
    with opened(parse_clickhouse_url(server_url)) as engine:
        migrate(engine)
    garbage = b"\x00\xffnot avro at all"
    invalid = replace(submission(province="IR-23"), province="IR-99")
    produce_raw(
        settings,
        topics.intake,
        [(b"junk", garbage), (wire.key(invalid), wire.encode(invalid))],
    )
    sink = start(
        settings,
        "sink",
        "--max-wait",
        "0.2",
        log=tmp_path / "sink.log",
        SAMT124_CLICKHOUSE_URL=server_url,
    )
    try:
        rows = wait_for(
            lambda: (found := listed(settings, server_url)) and len(found) >= 2 and found,
            120,
            "two dead letters in ClickHouse",
        )
        assert len(rows) == 2
        kinds = {str(row["reason_kind"]): row for row in rows}
        assert set(kinds) == {"undecodable", "invalid"}
        bad = kinds["invalid"]
        assert bad["request_id"] == invalid.request_id
        assert bad["event_type"] == "RequestSubmitted"
        assert str(bad["source"]).startswith(f"{topics.intake}[")
        assert listed(settings, server_url, "--kind", "undecodable")[0]["request_id"] == ""
        assert listed(settings, server_url, "--request-id", invalid.request_id) == [bad]
        assert listed(settings, server_url, "--reason", "no-such-text") == []

        # the report counts them by kind, against the raw dead-letter topic
        raw = read_topics(settings, [topics.dlq])
        assert len(raw) == 2
        report = cli(settings, server_url, "report", "dead-letters", "--format", "json")
        assert report.returncode == 0, report.stderr
        counts = {r["reason_kind"]: r["dead_letters"] for r in json.loads(report.stdout)}
        assert counts == {"undecodable": 1, "invalid": 1, "total": 2}

        bad_id = f"{bad['partition']}:{bad['offset']}"
        shown = cli(settings, server_url, "dlq", "show", bad_id)
        assert shown.returncode == 0, shown.stderr
        assert "IR-99" in shown.stdout
        original_line = shown.stdout.strip().splitlines()[-1]
        assert json.loads(original_line)["event_id"] == invalid.event_id
        junk = kinds["undecodable"]
        junk_shown = cli(
            settings, server_url, "dlq", "show", f"{junk['partition']}:{junk['offset']}"
        )
        assert junk_shown.returncode == 0, junk_shown.stderr
        assert garbage.hex() in junk_shown.stdout
        assert "key           junk" in junk_shown.stdout

        # a fix that is still wrong sends nothing; a dead letter that does not decode needs a file
        still_bad = cli(settings, server_url, "dlq", "replay", bad_id, "--set", "province=IR-98")
        assert still_bad.returncode == 1
        assert "province" in still_bad.stderr
        no_event = cli(
            settings,
            server_url,
            "dlq",
            "replay",
            f"{junk['partition']}:{junk['offset']}",
            "--set",
            "province=IR-30",
        )
        assert no_event.returncode == 2
        assert "does not decode" in no_event.stderr
        missing = cli(settings, server_url, "dlq", "show", "0:999999")
        assert missing.returncode == 1
        assert "no dead letter" in missing.stderr

        # fixed from the file `show` printed, with the province corrected
        fixed_file = tmp_path / "fixed.json"
        fixed_file.write_text(original_line.replace('"IR-99"', '"IR-30"'), encoding="utf-8")
        replayed = cli(settings, server_url, "dlq", "replay", bad_id, "--file", str(fixed_file))
        assert replayed.returncode == 0, replayed.stderr
        assert invalid.event_id in replayed.stdout

        def routed() -> list[Record] | None:
            records = read_topics(settings, [topics.province("IR-30")])
            return records if len(records) >= 2 else None

        records = wait_for(routed, 90, "the replayed request routed to IR-30")
        events = [wire.decode(r.value) for r in records]
        submitted = [e for e in events if isinstance(e, RequestSubmitted)]
        assert [e.event_id for e in submitted] == [invalid.event_id]
        assert any(isinstance(e, RequestReferred) for e in events)
        (forwarded,) = [r for r in records if r.value == wire.encode(submitted[0])]
        assert (
            forwarded.headers["replay-of"] == f"{topics.dlq}[{bad_id.replace(':', ']@')}".encode()
        )
        assert forwarded.headers["replay-of-event-id"] == invalid.event_id.encode()
        # nothing more was dead-lettered
        assert len(read_topics(settings, [topics.dlq])) == 2
    finally:
        sink.stop()
