"""One worker per identity: the home lock, the fence watch, restarts and their back-off."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from streams.identity import LOCK_FD, FenceWatch, HomeLock, IdentityTaken
from streams.restart import Restarts, read_status, status_path, write_status

HOLD = """
import sys, time
from pathlib import Path
from streams.identity import HomeLock
HomeLock.acquire(Path(sys.argv[1]), "w-1")
print("locked", flush=True)
time.sleep(60)
"""


def test_a_second_process_cannot_take_a_held_identity(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(LOCK_FD, raising=False)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(IdentityTaken, match=rf"pid {holder.pid}.*SAMT124_WORKER_ID"):
            HomeLock.acquire(tmp_path, "w-1")
        other = HomeLock.acquire(tmp_path, "w-2")  # another id on the same home is fine
        os.close(other.fd)
    finally:
        holder.kill()
        holder.wait()
    again = HomeLock.acquire(tmp_path, "w-1")  # free once the holder is gone
    assert again.path.read_text().strip() == str(os.getpid())
    # a restarted worker (same process, new image) keeps the lock it inherited
    assert HomeLock.acquire(tmp_path, "w-1").fd == again.fd
    os.close(again.fd)


def test_the_fence_watch_stops_only_when_another_client_holds_the_id_twice_running() -> None:
    watch = FenceWatch("samt124-worker-aaaa")
    logger = logging.getLogger("aiokafka.consumer.group_coordinator.test")
    watch.install()
    try:
        assert not watch.suspicious()
        logger.warning("Heartbeat failed: local member_id was not recognized; resetting")
        assert not watch.suspicious()  # once can be a session that expired
        logger.warning("Heartbeat failed: local member_id was not recognized; resetting")
        assert watch.suspicious()
        assert not watch.suspicious(now=10**9)  # old signs expire
    finally:
        for name in ("aiokafka", "faust", "kafka"):
            logging.getLogger(name).removeHandler(watch)
    assert not watch.judge("samt124-worker-aaaa")  # it holds its id: go on
    assert not watch.judge("samt124-worker-bbbb")
    assert not watch.judge(None)  # nobody holds it (between joins): start counting again
    assert not watch.judge("samt124-worker-bbbb")
    assert watch.judge("samt124-worker-bbbb")


def test_restarts_back_off_when_they_follow_each_other(monkeypatch: pytest.MonkeyPatch) -> None:
    restarts = Restarts()
    delays = []
    now = 1_000.0
    for _ in range(8):
        restarts = restarts.next(now)
        delays.append(restarts.delay)
        now += 5
    assert delays == [0, 0, 0, 2, 4, 8, 16, 30]
    assert restarts.next(now + 600).delay == 0  # a quiet minute resets the back-off
    monkeypatch.setenv("SAMT124_WORKER_RESTARTS", "7:2:123.5")
    assert Restarts.inherited() == Restarts(7, 2, 123.5)
    monkeypatch.setenv("SAMT124_WORKER_RESTARTS", "garbage")
    assert Restarts.inherited() == Restarts()


def test_the_status_file_is_replaced_whole(tmp_path: Path) -> None:
    path = status_path(tmp_path, "host/with:odd id")
    assert path.parent == tmp_path.resolve() / "worker"
    assert read_status(path) == {}
    write_status(path, {"restarts": 2, "reason": "ایست"})
    assert read_status(path) == {"restarts": 2, "reason": "ایست"}
    assert list(path.parent.iterdir()) == [path]


def test_a_stop_during_a_restarts_back_off_ends_the_process(tmp_path: Path) -> None:
    """SIGTERM while a restart waits (nothing acknowledged) stops the worker instead of being
    lost in the replacement of the process."""
    import signal
    import time

    script = (
        "import signal, sys\n"
        "signal.signal(signal.SIGTERM, lambda *a: None)  # as an event loop's handler would\n"
        "from streams.restart import restart\n"
        "print('waiting', flush=True)\n"
        "restart('a test', None)\n"
    )
    env = {**os.environ, "SAMT124_WORKER_RESTARTS": f"9:6:{time.time()}"}  # long back-off
    child = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
    )
    assert child.stdout is not None
    assert child.stdout.readline() == b"waiting\n"
    time.sleep(0.5)
    child.send_signal(signal.SIGTERM)
    assert child.wait(timeout=5) == -signal.SIGTERM
    assert b"restarting the worker" in (child.stderr.read() if child.stderr else b"")
