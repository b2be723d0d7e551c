"""`samt124 local up | down | status` through the console script, on ports of their own."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.conftest import REPO


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def samt124(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "samt124.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def processes_under(home: Path) -> list[str]:
    """Command lines of live processes that mention this home directory."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            state = (proc / "stat").read_text().rsplit(")", 1)[-1].split()[0]
        except OSError:
            continue
        if str(home) in cmdline and state != "Z":
            found.append(cmdline)
    return found


@pytest.mark.usefixtures("services")
def test_up_down_up_reuses_data_and_leaves_no_process(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("SAMT124_")},
        "SAMT124_HOME": str(home),
        "SAMT124_CACHE": str(REPO / ".samt124" / "cache"),
        "SAMT124_LOCAL_KAFKA_PORT": str(free_port()),
        "SAMT124_LOCAL_CONTROLLER_PORT": str(free_port()),
        "SAMT124_LOCAL_CLICKHOUSE_PORT": str(free_port()),
        "SAMT124_LOCAL_CLICKHOUSE_HTTP_PORT": str(free_port()),
        "PYTHONPATH": str(REPO),
    }
    try:
        up = samt124(env, "local", "up")
        assert up.returncode == 0, up.stderr
        assert f"bootstrap 127.0.0.1:{env['SAMT124_LOCAL_KAFKA_PORT']}" in up.stdout
        meta = (home / "kafka" / "data" / "meta.properties").read_text()
        status = samt124(env, "local", "status")
        assert "kafka       running" in status.stdout
        assert "clickhouse  running" in status.stdout

        down = samt124(env, "local", "down")
        assert down.returncode == 0, down.stderr
        assert processes_under(home) == []
        assert "stopped" in samt124(env, "local", "status").stdout

        again = samt124(env, "local", "up", "kafka")
        assert again.returncode == 0, again.stderr
        assert (home / "kafka" / "data" / "meta.properties").read_text() == meta
    finally:
        samt124(env, "local", "down")
    assert processes_under(home) == []


@pytest.mark.usefixtures("services")
def test_a_start_that_fails_after_launching_leaves_no_process(tmp_path: Path) -> None:
    from devtools.local import kafka
    from devtools.local.process import LocalServiceError
    from samt124.settings import Settings

    home = tmp_path / "home"
    settings = Settings(
        home=home,
        cache=REPO / ".samt124" / "cache",
        local_kafka_port=free_port(),
        local_controller_port=free_port(),
    )
    with pytest.raises(LocalServiceError, match="did not answer within"):
        kafka.up(settings, timeout=0.01)  # launched, but not given the time to answer
    assert processes_under(home) == []
    assert not kafka.status(settings).running


def test_missing_java_is_a_clear_message_not_a_traceback(tmp_path: Path) -> None:
    env = {
        "PATH": "/nonexistent",
        "SAMT124_HOME": str(tmp_path / "home"),
        "SAMT124_CACHE": str(tmp_path / "cache"),
        "PYTHONPATH": str(REPO),
    }
    result = samt124(env, "local", "up", "kafka")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "SAMT124_KAFKA_BOOTSTRAP" in result.stderr
    assert "mvn is not installed" in result.stderr
