"""``samt124 bench`` on its own private broker: the results file has its sections and figures."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
FAST = "kafka-tools,passthrough,publisher"
FIGURE = re.compile(r"^\| (?P<label>[^|]+?) \| (?P<value>[\d,.]+) \| (?P<unit>[^|]+?) \|", re.M)


def bench_small(only: str, output: Path, work: Path) -> subprocess.CompletedProcess[str]:
    """``samt124 bench --scale small --only ONLY`` as a child process, its results in ``output``."""
    command = ["bench", "--scale", "small", "--only", only, "--output", str(output)]
    return subprocess.run(
        [sys.executable, "-m", "samt124.cli", *command, "--work", str(work)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


@pytest.mark.integration
def test_bench_writes_sections_with_measured_figures(tmp_path: Path) -> None:
    output = tmp_path / "RESULTS.md"
    result = bench_small(FAST, output, tmp_path / "work")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    text = output.read_text()
    for heading in (
        "## Machine",
        "## Summary",
        "## Kafka's own perf tools",
        "## Bare Python pass-through",
        "## Publisher throughput",
    ):
        assert heading in text
    assert "Not measured" not in text
    assert "command: `samt124 bench --scale small --only " + FAST in text
    assert re.search(r"^\| cores \| \d+ \|$", text, re.M)
    assert re.search(r"^\| Java \| .*\d", text, re.M)
    figures = {m["label"]: float(m["value"].replace(",", "")) for m in FIGURE.finditer(text)}
    for label in (
        "ProducerPerformance",
        "ConsumerPerformance (fetch)",
        "kafka-python",
        "aiokafka",
        "Publisher.publish_many",
        "samt124 simulate (incl. generation)",
    ):
        assert figures.get(label, 0) > 0, f"no figure for {label}"
    ratio = figures["Publisher / ProducerPerformance"]
    assert ratio == pytest.approx(
        figures["Publisher.publish_many"] / figures["ProducerPerformance"], rel=0.01
    )
    # the private services are gone with the run
    leftovers = subprocess.run(
        ["pgrep", "-f", str(tmp_path / "work")], capture_output=True, text=True, check=False
    )
    assert leftovers.stdout.strip() == ""


@pytest.mark.integration
def test_bench_replays_a_whole_log_and_checks_it(tmp_path: Path) -> None:
    """``--only replay-log``: a log written to the province topics, replayed whole into an empty
    server database by ``samt124 replay``, whose own check passes; every message replayed."""
    output = tmp_path / "RESULTS.md"
    result = bench_small("replay-log", output, tmp_path / "work")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    text = output.read_text()
    assert "## Replay of a 60,000-event log, run whole" in text
    figures = {m["label"]: float(m["value"].replace(",", "")) for m in FIGURE.finditer(text)}
    assert figures["events written to the log"] == figures["replayed"] == 60_000
    assert figures["replay"] > 0
    assert figures["replay rate"] == pytest.approx(60_000 / figures["replay"], rel=0.01)
