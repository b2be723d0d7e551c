"""A usage mistake publishes nothing, with the real broker there to publish to."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from samt124 import cli
from samt124.kafka.reader import count_records
from samt124.kafka.topics import Topics
from samt124.settings import Settings
from tests.unit.test_cli_mistakes import EVENT, MISTAKES

PRODUCING = [(argv, said) for argv, said in MISTAKES if argv[:1] in (["publish"], ["simulate"])]


def test_the_mistakes_of_publish_and_simulate_send_nothing(
    settings: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "good.jsonl").write_text(json.dumps(EVENT, ensure_ascii=False) + "\n", "utf-8")
    (tmp_path / "latin1.jsonl").write_bytes(b'{"subject": "\xe9t\xe9"}\n')
    base = ["--bootstrap", settings.bootstrap, "--namespace", settings.topic_namespace]
    assert len(PRODUCING) >= 10
    for argv, said in PRODUCING:
        assert cli.main([*base, *argv]) == 2, argv
        err = capsys.readouterr().err
        assert all(words in err for words in said), err
    intake = Topics(settings.topic_namespace).intake
    assert count_records(settings, [intake]) == 0
    # the same command without the mistake does publish: the count above could have failed
    assert cli.main([*base, "publish", "good.jsonl"]) == 0
    assert count_records(settings, [intake]) == 1
