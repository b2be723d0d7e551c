"""Start, watch and stop one local daemon (the broker or the ClickHouse server)."""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from samt124.errors import CommandError


class LocalServiceError(CommandError):
    """A local service cannot be had; the message says what is missing and what to do instead."""


def require_tool(name: str, hint: str) -> str:
    """The path of a program on PATH, or a clear error naming it."""
    found = shutil.which(name)
    if found is None:
        raise LocalServiceError(f"{name} is not installed. {hint}")
    return found


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive lock so that two commands never start the same service at once."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@dataclass(frozen=True)
class Daemon:
    """A process started in its own session, known by a pid file."""

    name: str
    directory: Path
    marker: str  # a word in the command line that identifies the process as ours

    @property
    def pidfile(self) -> Path:
        return self.directory / f"{self.name}.pid"

    @property
    def logfile(self) -> Path:
        return self.directory / f"{self.name}.out"

    def pid(self) -> int | None:
        """The pid if the process runs and is ours, else None (and a stale pid file is removed)."""
        try:
            pid = int(self.pidfile.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            self.pidfile.unlink(missing_ok=True)
            return None
        zombie = stat.rsplit(")", 1)[-1].split()[0] == "Z"
        if zombie or self.marker not in cmdline:
            self.pidfile.unlink(missing_ok=True)
            return None
        return pid

    def start(
        self, command: Sequence[str], env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        self.directory.mkdir(parents=True, exist_ok=True)
        with self.logfile.open("ab") as log:
            process = subprocess.Popen(
                list(command),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.directory,
                env={**os.environ, **(env or {})},
                start_new_session=True,
            )
        self.pidfile.write_text(str(process.pid))
        return process

    def wait_ready(
        self, ready: Callable[[], bool], timeout: float, process: subprocess.Popen[bytes] | None
    ) -> None:
        """Poll ``ready`` until it answers True; fail early with the log if the process died."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            died = process.poll() is not None if process is not None else self.pid() is None
            if died:
                raise LocalServiceError(
                    f"{self.name} exited during start-up; last lines of {self.logfile}:\n"
                    + self.tail()
                )
            if ready():
                return
            time.sleep(0.3)
        raise LocalServiceError(
            f"{self.name} did not answer within {timeout:.0f} s; last lines of {self.logfile}:\n"
            + self.tail()
        )

    def stop(self, timeout: float = 30.0) -> bool:
        """SIGTERM the whole process group, wait, then SIGKILL. True if something was stopped."""
        pid = self.pid()
        if pid is None:
            return False
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and _alive(pid):
            time.sleep(0.2)
        if _alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
            while _alive(pid):
                time.sleep(0.1)
        self.pidfile.unlink(missing_ok=True)
        return True

    def tail(self, lines: int = 25) -> str:
        try:
            text = self.logfile.read_text(errors="replace")
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])


def _alive(pid: int) -> bool:
    """True while the process exists and is not a zombie (reaps our own children)."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"
