"""A real ClickHouse server on loopback, from Debian's ``clickhouse-server`` package.

The package is installed when it is absent and the user is allowed to (root); the server runs
with samt124's own configuration and data directory, on the ports from the settings.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from devtools.local import tls
from devtools.local.process import Daemon, LocalServiceError, file_lock
from samt124.settings import Settings

SERVER_CANDIDATES = (
    "clickhouse-server",
    "/usr/sbin/clickhouse-server",
    "/usr/bin/clickhouse-server",
)
NO_SERVER = (
    "The ClickHouse server is not installed and samt124 cannot install it here "
    "(it needs root and Debian's apt: apt-get install clickhouse-server). "
    "Use the embedded engine instead (leave SAMT124_CLICKHOUSE_URL unset), or point samt124 at a "
    "running server with SAMT124_CLICKHOUSE_URL=clickhouse://user:pass@host:9000/db."
)


@dataclass(frozen=True)
class ClickHouseStatus:
    running: bool
    pid: int | None
    url: str
    data: Path
    secure_url: str | None = None  # clickhouses://... when the TLS port is on


def find_server() -> str | None:
    for candidate in SERVER_CANDIDATES:
        found = shutil.which(candidate)
        if found:
            return found
    return None


def install() -> str:
    """The server binary, installing Debian's package first when possible."""
    found = find_server()
    if found:
        return found
    apt = shutil.which("apt-get")
    if apt is None or os.geteuid() != 0:
        raise LocalServiceError(NO_SERVER)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    print("installing Debian's clickhouse-server package ...", flush=True)
    command = [apt, "install", "-y", "-q", "--no-install-recommends", "clickhouse-server"]
    if subprocess.run(command, env=env, capture_output=True, check=False).returncode != 0:
        subprocess.run([apt, "update", "-q"], env=env, capture_output=True, check=False)
        result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise LocalServiceError(f"{NO_SERVER}\napt-get said:\n{result.stderr[-2000:]}")
    found = find_server()
    if found is None:
        raise LocalServiceError(NO_SERVER)
    return found


def _daemon(settings: Settings) -> Daemon:
    return Daemon("clickhouse", settings.home.resolve() / "clickhouse", marker="clickhouse")


def url(settings: Settings) -> str:
    return f"clickhouse://default:@127.0.0.1:{settings.local_clickhouse_port}/samt124"


def secure_url(settings: Settings) -> str | None:
    """The TLS address with the local authority to trust, when the secure port is set."""
    port = settings.local_clickhouse_secure_port
    if port is None:
        return None
    ca = tls.files(_daemon(settings).directory / "tls").ca
    return f"clickhouses://default:@localhost:{port}/samt124?ca_certs={ca}"


def _secure_config(settings: Settings, directory: Path) -> str:
    """The TLS port and the server's certificate (made once, then reused), or nothing."""
    port = settings.local_clickhouse_secure_port
    if port is None:
        return ""
    files = tls.ensure(directory / "tls")
    return (
        f"  <tcp_port_secure>{port}</tcp_port_secure>\n"
        "  <openSSL>\n"
        "    <server>\n"
        f"      <certificateFile>{files.server}</certificateFile>\n"
        f"      <privateKeyFile>{files.server}</privateKeyFile>\n"
        "      <verificationMode>none</verificationMode>\n"
        "      <loadDefaultCAFile>false</loadDefaultCAFile>\n"
        "      <cacheSessions>true</cacheSessions>\n"
        "      <disableProtocols>sslv2,sslv3,tlsv1,tlsv1_1</disableProtocols>\n"
        "      <preferServerCiphers>true</preferServerCiphers>\n"
        "    </server>\n"
        "  </openSSL>\n"
    )


def _write_config(settings: Settings, directory: Path) -> Path:
    data = directory / "data"
    for sub in ("tmp", "user_files", "format_schemas"):
        (data / sub).mkdir(parents=True, exist_ok=True)
    (directory / "logs").mkdir(exist_ok=True)
    templates = resources.files("devtools.local").joinpath("templates")
    config = directory / "config.xml"
    config.write_text(
        templates.joinpath("clickhouse-config.xml")
        .read_text()
        .replace("@PORT@", str(settings.local_clickhouse_port))
        .replace("@HTTP_PORT@", str(settings.local_clickhouse_http_port))
        .replace("@SECURE@", _secure_config(settings, directory))
        .replace("@DATA@", str(data))
        .replace("@LOGS@", str(directory / "logs"))
    )
    (directory / "users.xml").write_text(templates.joinpath("clickhouse-users.xml").read_text())
    return config


def answers(port: int) -> bool:
    """True when the server answers ``SELECT 1`` over the native protocol."""
    from clickhouse_driver import Client
    from clickhouse_driver.errors import Error

    client = Client("127.0.0.1", port=port, connect_timeout=2, send_receive_timeout=5)
    # a probe: the driver's warning for a refused connection is the answer, not news
    driver_log = logging.getLogger("clickhouse_driver.connection")
    level = driver_log.level
    driver_log.setLevel(logging.CRITICAL)
    try:
        return bool(client.execute("SELECT 1") == [(1,)])
    except (Error, OSError, EOFError):
        return False
    finally:
        client.disconnect()
        driver_log.setLevel(level)


def up(settings: Settings, timeout: float = 60.0) -> ClickHouseStatus:
    """Install if needed, start the server with samt124's config, wait for ``SELECT 1``."""
    daemon = _daemon(settings)
    with file_lock(daemon.directory / ".lock"):
        process = None
        if daemon.pid() is None:
            server = install()
            config = _write_config(settings, daemon.directory)
            process = daemon.start([server, f"--config-file={config}"])
        try:
            daemon.wait_ready(lambda: answers(settings.local_clickhouse_port), timeout, process)
        except BaseException:
            if process is not None:  # started here and not answering: leave nothing running
                daemon.stop()
            raise
    return status(settings)


def down(settings: Settings) -> bool:
    return _daemon(settings).stop()


def status(settings: Settings) -> ClickHouseStatus:
    daemon = _daemon(settings)
    pid = daemon.pid()
    return ClickHouseStatus(
        running=pid is not None,
        pid=pid,
        url=url(settings),
        data=daemon.directory / "data",
        secure_url=secure_url(settings),
    )
