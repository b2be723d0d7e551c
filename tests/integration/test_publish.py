"""Publishing on the real broker: the Python API and `samt124 publish FILE`."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import avro.io
import avro.schema

from producers.publisher import Publisher
from samt124.kafka.reader import read_topics
from samt124.kafka.topics import Topics
from samt124.settings import Settings
from schemas import SCHEMA_DIR
from tests.integration.pipeline import env_for, submission
from tests.samples import submitted_line

GOOD = submitted_line("req-file-1")


def publish(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "samt124.cli", "publish", *args],
        env=env_for(settings),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def jsonl(tmp_path: Path, rows: Sequence[Mapping[str, object]]) -> Path:
    path = tmp_path / "events.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    return path


def test_what_samt124_publishes_apache_avro_reads_with_the_avsc_alone(settings: Settings) -> None:
    event = submission(province="IR-30")
    with Publisher(settings) as publisher:
        confirmed = publisher.publish(event)
    assert confirmed.topic == Topics(settings.topic_namespace).intake
    (record,) = read_topics(settings, [confirmed.topic])
    assert record.key == event.request_id.encode()
    assert record.headers["event-type"] == b"RequestSubmitted"
    schema = avro.schema.parse((SCHEMA_DIR / "RequestSubmitted.avsc").read_text(encoding="utf-8"))
    assert record.value[:2] == b"\xc3\x01"
    body = avro.io.BinaryDecoder(io.BytesIO(record.value[10:]))
    datum = avro.io.DatumReader(schema).read(body)
    assert datum["request_id"] == event.request_id
    assert datum["subject"] == event.subject
    assert datum["province"] == "IR-30"


def test_a_file_with_one_bad_line_sends_nothing_and_names_the_line(
    settings: Settings, tmp_path: Path
) -> None:
    rows = [GOOD, {**GOOD, "request_id": "req-file-2", "province": "Alborz"}, GOOD]
    result = publish(settings, str(jsonl(tmp_path, rows)))
    assert result.returncode == 1
    assert "events.jsonl:2: province:" in result.stderr
    assert "nothing was sent" in result.stderr
    assert read_topics(settings, [Topics(settings.topic_namespace).intake]) == []


def test_reject_file_sends_the_valid_lines_and_sets_the_bad_ones_aside(
    settings: Settings, tmp_path: Path
) -> None:
    bad = {**GOOD, "request_id": "req-file-3", "category": "NOT-A-CATEGORY"}
    rows = [GOOD, bad, {**GOOD, "request_id": "req-file-4"}]
    rejects = tmp_path / "rejects.jsonl"
    result = publish(settings, str(jsonl(tmp_path, rows)), "--reject-file", str(rejects))
    assert result.returncode == 0, result.stderr
    sent = read_topics(settings, [Topics(settings.topic_namespace).intake])
    assert sorted(r.key for r in sent if r.key) == [b"req-file-1", b"req-file-4"]
    assert [json.loads(line)["request_id"] for line in rejects.read_text().splitlines()] == [
        "req-file-3"
    ]
