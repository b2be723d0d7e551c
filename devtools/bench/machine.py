"""What the benchmark ran on: hardware, operating system, runtimes and library versions."""

from __future__ import annotations

import os
import platform
import re
import subprocess
from importlib import metadata
from pathlib import Path

from samt124.settings import Settings

LIBRARIES = (
    "faust-streaming",
    "mode-streaming",
    "aiokafka",
    "kafka-python",
    "fastavro",
    "clickhouse-driver",
    "chdb",
    "chdb-core",
    "py-spy",
)


def _proc(path: str, pattern: str) -> str:
    try:
        found = re.search(pattern, Path(path).read_text(), re.MULTILINE)
    except OSError:
        return "unknown"
    return found.group(1).strip() if found else "unknown"


def _java() -> str:
    try:
        result = subprocess.run(
            ["java", "-version"], capture_output=True, text=True, check=False, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired):
        return "not found"
    return (result.stderr or result.stdout).splitlines()[0] if result.stderr else "unknown"


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def describe(settings: Settings, clickhouse_server: str | None) -> list[tuple[str, str]]:
    memory_kib = _proc("/proc/meminfo", r"^MemTotal:\s+(\d+)")
    memory = f"{int(memory_kib) / 1024 / 1024:.1f} GiB" if memory_kib.isdigit() else memory_kib
    facts = [
        ("cores", str(os.cpu_count())),
        ("RAM", memory),
        ("CPU", _proc("/proc/cpuinfo", r"^model name\s*:\s*(.+)$")),
        ("OS", _proc("/etc/os-release", r'^PRETTY_NAME="?([^"\n]+)') + f" ({platform.release()})"),
        ("Python", platform.python_version()),
        ("Java", _java()),
        ("Kafka broker", f"Apache Kafka {settings.kafka_version} (KRaft, single node, loopback)"),
        ("partitions per topic", str(settings.partitions)),
        ("ClickHouse server", clickhouse_server or "not started"),
        ("load average at start", " ".join(f"{x:.2f}" for x in os.getloadavg())),
    ]
    facts += [(name, _version(name)) for name in LIBRARIES]
    return facts


def clickhouse_server_version(url: str) -> str:
    from samt124.settings import parse_clickhouse_url

    target = parse_clickhouse_url(url)
    from clickhouse_driver import Client

    client = Client(target.host, port=target.port, user=target.user)
    try:
        return f"ClickHouse {client.execute('SELECT version()')[0][0]} (Debian package)"
    finally:
        client.disconnect()
