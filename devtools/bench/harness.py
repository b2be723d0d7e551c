"""The benchmark's own services and processes: a private broker and ClickHouse server on free
ports, samt124 subcommands as child processes, topic reading by record timestamps.

Nothing here is shared with the test broker or a developer's ``samt124 local up``: every
benchmark run starts its own services in its own home and stops them at the end.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from samt124 import waiting
from samt124.settings import Settings, child_environment

REPO = Path(__file__).resolve().parents[2]
LOG_TIME = re.compile(r"(\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d[,.]\d{3})")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def private_settings(home: Path, cache: Path, partitions: int) -> Settings:
    """Settings for a broker and a ClickHouse server of the benchmark's own, on free ports."""
    return Settings(
        home=home,
        cache=cache,
        partitions=partitions,
        local_kafka_port=free_port(),
        local_controller_port=free_port(),
        local_clickhouse_port=free_port(),
        local_clickhouse_http_port=free_port(),
    )


@contextlib.contextmanager
def private_services(base: Settings, *, clickhouse_server: bool) -> Iterator[str | None]:
    """Start the broker (and the ClickHouse server when asked); yield the server's URL."""
    from devtools.local import clickhouse, kafka

    kafka.up(base)
    url = None
    try:
        if clickhouse_server:
            url = clickhouse.up(base).url
        yield url
    finally:
        if clickhouse_server:
            clickhouse.down(base)
        kafka.down(base)


def namespace(settings: Settings, prefix: str, **changes: Any) -> Settings:
    """The same services under a fresh topic namespace (and other changes)."""
    name = f"{prefix}{uuid.uuid4().hex[:8]}"
    return settings.model_copy(update={"topic_namespace": name, **changes})


def env_for(settings: Settings) -> dict[str, str]:
    """The environment a samt124 child process needs to use ``settings``."""
    return {**child_environment(settings), "PYTHONPATH": str(REPO)}


@dataclass
class Child:
    """A samt124 subcommand running in the background, its output in a log file."""

    popen: subprocess.Popen[bytes]
    log: Path
    started: float  # time.time() just before it was started

    @property
    def pid(self) -> int:
        return self.popen.pid

    def peak_rss_mib(self) -> float | None:
        """VmHWM (the peak resident set) from /proc, while the process runs."""
        try:
            status = Path(f"/proc/{self.pid}/status").read_text()
        except OSError:
            return None
        match = re.search(r"^VmHWM:\s+(\d+) kB", status, re.MULTILINE)
        return int(match.group(1)) / 1024 if match else None

    def stop(self, timeout: float = 60.0) -> int:
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGTERM)
            try:
                return self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.pid, signal.SIGKILL)
                return self.popen.wait(timeout=30)
        return self.popen.returncode

    def kill(self) -> None:
        """SIGKILL: no flush, no commit."""
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGKILL)
        self.popen.wait(timeout=30)

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def wait_for_line(self, pattern: str, timeout: float, every: float = 0.05) -> float:
        """Poll the log for ``pattern``; return time.time() when first seen."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if regex.search(self.output()):
                return time.time()
            if self.popen.poll() is not None:
                raise BenchError(f"{self.log.name} exited early:\n{self.output()[-3000:]}")
            time.sleep(every)
        raise BenchError(f"no {pattern!r} in {self.log} within {timeout:.0f} s")


class BenchError(RuntimeError):
    """A measurement could not be taken; the message says why."""


def start(settings: Settings, *args: str, log: Path) -> Child:
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        started = time.time()
        popen = subprocess.Popen(
            [sys.executable, "-m", "samt124.cli", *args],
            env=env_for(settings),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            cwd=REPO,
        )
    return Child(popen, log, started)


def run(settings: Settings, *args: str, log: Path, timeout: float = 3600.0) -> tuple[float, str]:
    """Run a samt124 subcommand to completion; return (seconds, output)."""
    seconds, output, _ = run_watched(settings, *args, log=log, timeout=timeout)
    return seconds, output


def run_watched(
    settings: Settings, *args: str, log: Path, timeout: float = 3600.0
) -> tuple[float, str, float | None]:
    """Run a samt124 subcommand to completion; return (seconds, output, peak RSS in MiB)."""
    child = start(settings, *args, log=log)
    peak = None
    deadline = time.monotonic() + timeout
    try:
        while child.popen.poll() is None and time.monotonic() < deadline:
            peak = child.peak_rss_mib() or peak
            time.sleep(0.1)
    finally:
        child.stop()
    elapsed = time.time() - child.started
    if child.popen.returncode != 0:
        raise BenchError(
            f"samt124 {' '.join(args)} exited {child.popen.returncode}:\n{child.output()[-3000:]}"
        )
    return elapsed, child.output(), peak


def log_times(text: str, marker: str) -> list[float]:
    """The epoch seconds of the log lines containing ``marker`` (Python logging's asctime)."""
    times = []
    for line in text.splitlines():
        if marker in line:
            found = LOG_TIME.search(line)
            if found:
                stamp = found.group(1).replace(",", ".").replace("T", " ")
                times.append(datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S.%f").timestamp())
    return times


def wait_until(condition: Callable[[], Any], timeout: float, what: str, every: float = 0.2) -> Any:
    return waiting.wait_until(condition, timeout, what, every, error=BenchError)


def percentile(values: list[float], fraction: float) -> float:
    """The nearest-rank percentile (``fraction`` in 0..1) of a non-empty list."""
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, math.ceil(fraction * len(ordered)) - 1))
    return ordered[rank]


def topics_ready(settings: Settings, extra: tuple[str, ...] = ()) -> None:
    """Create samt124's topics (and ``extra`` ones) and wait until every partition has a leader."""
    from samt124.kafka.admin import ensure_topics

    ensure_topics(settings, extra)
    time.sleep(0.5)
