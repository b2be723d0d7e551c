"""Helpers for tests that run samt124's processes against the real broker."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kafka import KafkaProducer

from samt124.domain.events import Event, Requester, RequestSubmitted
from samt124.kafka.reader import Record
from samt124.settings import Settings, child_environment
from samt124.waiting import wait_until

REPO = Path(__file__).resolve().parents[2]


def env_for(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment a samt124 subprocess needs to use these settings."""
    return {**child_environment(settings), "PYTHONPATH": str(REPO), **extra}


@dataclass
class Process:
    """A samt124 subcommand running in the background, its output in a log file."""

    popen: subprocess.Popen[bytes]
    log: Path

    def kill(self) -> None:
        """SIGKILL: no goodbye, no flush, no commit."""
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGKILL)
        self.popen.wait(timeout=30)

    def stop(self, timeout: float = 60.0) -> int:
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                return self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.popen.returncode

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def start(settings: Settings, *args: str, log: Path, **env: str) -> Process:
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        popen = subprocess.Popen(
            [sys.executable, "-m", "samt124.cli", *args],
            env=env_for(settings, **env),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=REPO,
        )
    return Process(popen, log)


def produce_raw(
    settings: Settings, topic: str, messages: list[tuple[bytes | None, bytes]]
) -> list[tuple[int, int]]:
    """Send each message and wait for it to be written; where each went (partition, offset)."""
    producer = KafkaProducer(**settings.kafka_client_options(), acks="all")
    places = []
    for key, value in messages:
        written = producer.send(topic, key=key, value=value).get(timeout=30)
        places.append((written.partition, written.offset))
    producer.close()
    return places


def wait_for(
    condition: Callable[[], Any],
    timeout: float,
    what: str,
    every: float = 0.5,
    *,
    watching: Process | None = None,
) -> Any:
    """:func:`wait_until`, failing the test; with ``watching``, a timeout says whether that
    process still runs and shows the end of its output (what it was doing meanwhile)."""
    try:
        return wait_until(condition, timeout, what, every, error=AssertionError)
    except AssertionError as error:
        if watching is None:
            raise
        code = watching.popen.poll()
        state = "still running" if code is None else f"exited with {code}"
        raise AssertionError(
            f"{error}; the process {state}, its output ends:\n{watching.output()[-6000:]}"
        ) from None


def submission(
    *,
    province: str = "IR-23",
    category: str = "MKT-OVERCHARGE",
    at: datetime | None = None,
    request_id: str | None = None,
    priority: str = "NORMAL",
) -> RequestSubmitted:
    when = at or datetime.now(UTC)
    return RequestSubmitted(
        event_id=str(uuid.uuid4()),
        request_id=request_id or f"req-{uuid.uuid4().hex[:12]}",
        occurred_at=when,
        recorded_at=when,
        source="test",
        channel="WEB_PORTAL",
        requester=Requester(national_id="10101010101", name="شرکت آزمون"),
        category=category,
        province=province,
        subject="مشکل تامین مواد اولیه",
        body="شرح درخواست",
        priority=priority,  # type: ignore[arg-type]
    )


def decoded(records: list[Record]) -> list[Event]:
    from samt124.contract import wire

    return [wire.decode(r.value) for r in records]
