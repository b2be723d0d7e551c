"""The README's tour runs as written (on private ports, home and topic namespace)."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
from pathlib import Path

import pytest

from samt124.settings import Settings
from tests.integration.pipeline import REPO, env_for


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def processes_with_home(home: Path) -> list[str]:
    """Live processes started with this SAMT124_HOME or naming it on their command line."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            environ = (proc / "environ").read_bytes().split(b"\0")
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            state = (proc / "stat").read_text().rsplit(")", 1)[-1].split()[0]
        except OSError:
            continue
        mine = f"SAMT124_HOME={home}".encode() in environ or str(home) in cmdline
        if mine and state != "Z" and "pytest" not in cmdline:
            found.append(cmdline)
    return found


def tour() -> str:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## A short tour") :]
    match = re.search(r"```sh\n(.*?)```", section, re.DOTALL)
    assert match is not None, "the tour has a shell block"
    return match.group(1)


@pytest.mark.timeout(900)
def test_the_readme_tour_runs(settings: Settings, tmp_path: Path) -> None:
    env = env_for(settings)
    env.pop("SAMT124_KAFKA_BOOTSTRAP")  # the tour starts its own broker
    env.update(
        SAMT124_HOME=str(tmp_path / "home"),
        SAMT124_LOCAL_KAFKA_PORT=str(free_port()),
        SAMT124_LOCAL_CONTROLLER_PORT=str(free_port()),
        SAMT124_LOCAL_CLICKHOUSE_PORT=str(free_port()),
        SAMT124_LOCAL_CLICKHOUSE_HTTP_PORT=str(free_port()),
        SAMT124_CACHE=str(REPO / ".samt124" / "cache"),
    )
    script = "set -euo pipefail\n" + tour()
    log = tmp_path / "tour.log"
    with log.open("w") as sink:
        shell = subprocess.Popen(
            ["bash", "-c", script],
            cwd=REPO,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        returncode = shell.wait(timeout=840)
        left = processes_with_home(tmp_path / "home")
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(shell.pid, signal.SIGKILL)  # whatever the tour left behind
        subprocess.run(
            [str(REPO / ".venv" / "bin" / "samt124"), "local", "down"],
            env=env,
            capture_output=True,
            check=False,
        )
    output = log.read_text(errors="replace")
    assert returncode == 0, output[-4000:]
    assert "kafka       running" in output
    assert re.search(r"IR-\d\d", output), "the reports name provinces"
    assert "kafka       stopped" in output, "local down ran"
    assert left == [], "the tour leaves no process behind"
