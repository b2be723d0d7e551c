"""One worker per identity: a lock on the worker's home, and a watch for being fenced.

A worker is a static member of its consumer group (``group.instance.id``). Two processes with
the same id take the membership from each other in turn: each is told by the broker that its
member id is unknown, rejoins, and so fences the other, every heartbeat, while both re-read
the same messages. Two guards stop that:

* :class:`HomeLock` — a worker holds an exclusive lock on ``<home>/worker/<id>.lock`` while it
  runs (and across its own restarts, which replace the process image and inherit the lock), so
  a second worker with the same id on the same home refuses to start;
* :class:`FenceWatch` — a worker that is told more than once within a minute that its member
  id is unknown asks the broker who holds its instance id; when another client holds it twice
  running, this worker stops and says so, instead of rejoining in a loop.
"""

from __future__ import annotations

import fcntl
import logging
import os
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

LOCK_FD = "SAMT124_WORKER_LOCK_FD"  # the inherited lock's descriptor, across a restart
FENCE_SIGNS = ("member_id was not recognized", "UnknownMemberIdError", "FencedInstanceId")
FENCE_WINDOW = 60.0  # seconds
FENCE_SIGNALS = 2  # unknown-member signs within the window before the broker is asked
FENCE_STRIKES = 2  # consecutive answers naming another client before the worker stops


class IdentityTaken(Exception):
    """Another worker runs with this identity."""


@dataclass
class HomeLock:
    path: Path
    fd: int

    @classmethod
    def acquire(cls, home: Path, instance: str) -> HomeLock:
        """Lock ``<home>/worker/<instance>.lock``, or raise :class:`IdentityTaken`."""
        path = home.resolve() / "worker" / f"{file_name(instance)}.lock"
        inherited = _inherited(path)
        if inherited is not None:
            return cls(path, inherited)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = Path(path).read_text().strip() or "unknown"
            os.close(fd)
            raise IdentityTaken(
                f"another worker with the id {instance!r} already runs on the home"
                f" {home.resolve()} (pid {holder}, lock {path}); stop it first, or give this"
                " one a home (SAMT124_HOME) or an id (SAMT124_WORKER_ID) of its own"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        os.set_inheritable(fd, True)  # kept by the process that replaces this one on restart
        os.environ[LOCK_FD] = f"{fd}:{path}"
        return cls(path, fd)


def _inherited(path: Path) -> int | None:
    """The descriptor of this lock, when this process inherited it from its previous image."""
    value = os.environ.get(LOCK_FD, "")
    number, _, locked = value.partition(":")
    if not number.isdigit() or Path(locked) != path:
        return None
    fd = int(number)
    try:
        same = os.fstat(fd).st_ino == os.stat(path).st_ino
    except OSError:
        return None
    return fd if same else None


def file_name(instance: str) -> str:
    """A worker's id as a file name (its files in ``<home>/worker``)."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in instance)


class FenceWatch(logging.Handler):
    """Counts the Kafka client's "unknown member id" reports and judges the broker's answers.

    Install with :meth:`install`; :meth:`suspicious` says when to ask the broker who holds the
    instance id, :meth:`judge` takes the answer (the client id holding it, or None).
    """

    def __init__(self, client_id: str) -> None:
        super().__init__(logging.WARNING)
        self.client_id = client_id
        self.signs: deque[float] = deque()
        self.strikes = 0

    def install(self) -> None:
        for name in ("aiokafka", "faust", "kafka"):
            logging.getLogger(name).addHandler(self)

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if any(sign in text for sign in FENCE_SIGNS):
            self.signs.append(time.monotonic())

    def suspicious(self, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        while self.signs and now - self.signs[0] > FENCE_WINDOW:
            self.signs.popleft()
        return len(self.signs) >= FENCE_SIGNALS

    def judge(self, holder: str | None) -> bool:
        """Record who holds the instance id; True when this worker must stop."""
        if holder is None or holder == self.client_id:
            self.strikes = 0
            return False
        self.strikes += 1
        return self.strikes >= FENCE_STRIKES
