"""Restarting the worker from its committed offsets, and the status file that says so.

When the worker cannot vouch for what it has read (offsets were skipped, a batch failed in a
way the per-message guard did not catch), it must not go on and must not acknowledge: the
process is replaced by a fresh worker (same arguments, same static member id, so it gets its
partitions back at once), which resumes at the group's committed offsets. Restarts that follow
each other quickly back off, up to half a minute apart, so a fault that lasts does not spin.

Every worker keeps ``<home>/worker/<id>.status.json`` up to date: when it started, how many
times it restarted itself and why the last time (with the offsets from which nothing was
acknowledged), and its counts. ``samt124 worker --status`` prints it.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

from streams.identity import file_name

log = logging.getLogger("samt124.worker")
ENV = "SAMT124_WORKER_RESTARTS"  # "count:quick:last" handed from a process to its replacement
QUICK_SECONDS = 30.0  # restarts closer than this count as consecutive
MAX_DELAY = 30.0


@dataclass(frozen=True)
class Restarts:
    count: int = 0  # restarts before this process
    quick: int = 0  # of which consecutive, each within QUICK_SECONDS of the one before
    last: float = 0.0  # when the last one happened (Unix time)

    @classmethod
    def inherited(cls) -> Restarts:
        try:
            count, quick, last = os.environ.get(ENV, "").split(":")
            return cls(int(count), int(quick), float(last))
        except ValueError:
            return cls()

    def next(self, now: float) -> Restarts:
        quick = self.quick + 1 if self.count and now - self.last < QUICK_SECONDS else 0
        return Restarts(self.count + 1, quick, now)

    @property
    def delay(self) -> float:
        """Seconds to wait before this restart: none for the first three in a row."""
        return 0.0 if self.quick < 3 else min(MAX_DELAY, 2.0 ** (self.quick - 2))


def status_path(home: Path, instance: str) -> Path:
    return home.resolve() / "worker" / f"{file_name(instance)}.status.json"


def write_status(path: Path, status: dict[str, Any]) -> None:
    """Replace the status file in one step (readers never see half of it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".tmp")
    partial.write_text(json.dumps(status, indent=2, ensure_ascii=False) + "\n")
    partial.replace(path)


def read_status(path: Path) -> dict[str, Any]:
    try:
        found = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return found if isinstance(found, dict) else {}


def restart(reason: str, status: Path | None = None) -> NoReturn:
    """Replace this process with a fresh worker: it resumes from the committed offsets.

    A stop asked for from now until the fresh worker is running ends the process at once (the
    default action of SIGTERM and SIGINT): nothing is acknowledged in between, so that is safe,
    and the stop is not lost in the replacement.
    """
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    now = time.time()
    following = Restarts.inherited().next(now)
    delay = following.delay
    log.error(
        "%s; restarting the worker to read them again from the last committed offsets%s",
        reason,
        f" in {delay:.0f} s ({following.quick} restarts in a row)" if delay else "",
    )
    if status is not None:
        current = read_status(status)
        current["restarts"] = following.count
        current["last_restart"] = {
            "at": datetime.fromtimestamp(now, UTC).isoformat(),
            "reason": reason,
        }
        write_status(status, current)
    for handler in logging.getLogger().handlers:
        handler.flush()
    sys.stdout.flush()
    sys.stderr.flush()
    os.environ[ENV] = f"{following.count}:{following.quick}:{following.last}"
    time.sleep(delay)
    os.execv(sys.executable, [sys.executable, *sys.orig_argv[1:]])
