"""samt124 against a ClickHouse server over TLS (``clickhouses://``): migrations, queries and
reports through the secure native port, and a clear refusal when the server's certificate is
not trusted.

The server is samt124's own local one, on ports of its own, with its optional TLS port; its
certificate is signed by the private authority ``samt124 local up`` makes.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from devtools.local import clickhouse
from samt124.settings import Settings
from tests.chaos.harness import free_port
from tests.integration.conftest import Services, unique
from tests.integration.pipeline import env_for

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, services: Services) -> Iterator[Settings]:
    """A ClickHouse server of this module's own with a TLS port besides the plain one (and the
    session's broker, for the topics ``init`` makes)."""
    settings = Settings(
        home=tmp_path_factory.mktemp("clickhouse-tls"),
        cache=REPO / ".samt124" / "cache",
        kafka_bootstrap=services.base.bootstrap,
        topic_namespace=unique("tls"),
        local_clickhouse_port=free_port(),
        local_clickhouse_http_port=free_port(),
        local_clickhouse_secure_port=free_port(),
    )
    clickhouse.up(settings, timeout=120)
    try:
        yield settings
    finally:
        clickhouse.down(settings)


def samt124(settings: Settings, url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "samt124.cli", *args],
        env=env_for(settings, SAMT124_CLICKHOUSE_URL=url),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def test_init_sql_and_report_go_through_the_tls_port(server: Settings) -> None:
    status = clickhouse.status(server)
    assert status.secure_url is not None
    assert f":{server.local_clickhouse_secure_port}/" in status.secure_url
    url = status.secure_url.replace("/samt124?", "/tls_analytics?")

    init = samt124(server, url, "init")
    assert init.returncode == 0, init.stderr
    query = samt124(
        server,
        url,
        "sql",
        "--format",
        "json",
        "SELECT count() AS tables FROM system.tables WHERE database = 'tls_analytics'",
    )
    assert query.returncode == 0, query.stderr
    [row] = json.loads(query.stdout)
    assert int(row["tables"]) > 0
    report = samt124(server, url, "report", "backlog", "--format", "json")
    assert report.returncode == 0, report.stderr
    assert json.loads(report.stdout) == []  # nothing published: an empty backlog, not an error

    # the plain port still answers, and the same database is there: one server, two ports
    plain = samt124(
        server,
        clickhouse.url(server).replace("/samt124", "/tls_analytics"),
        "sql",
        "--format",
        "json",
        "SELECT count() AS tables FROM system.tables WHERE database = 'tls_analytics'",
    )
    assert json.loads(plain.stdout) == [row]


MISTAKES = {
    # scheme, which port, what the error must say
    "untrusted-certificate": (
        "clickhouses",
        "local_clickhouse_secure_port",
        "CERTIFICATE_VERIFY_FAILED] certificate verify failed",
        "add ?ca_certs=PATH, the authority that signed it",
    ),
    "tls-to-the-plain-port": (
        "clickhouses",
        "local_clickhouse_port",
        "WRONG_VERSION_NUMBER",
        "that port does not speak TLS",
    ),
    "plain-to-the-tls-port": (
        "clickhouse",
        "local_clickhouse_secure_port",
        "Connection reset by peer",
        "the URL starts with clickhouses://",
    ),
}


@pytest.mark.parametrize("mistake", sorted(MISTAKES))
def test_a_tls_mistake_is_refused_with_the_cause_and_what_to_change(
    server: Settings, mistake: str
) -> None:
    scheme, port, cause, hint = MISTAKES[mistake]
    url = f"{scheme}://default:@localhost:{getattr(server, port)}/samt124"
    result = samt124(server, url, "sql", "SELECT 1")
    assert result.returncode == 1
    first = result.stderr.strip().splitlines()[0]
    assert first.startswith("samt124 sql: ClickHouse: Code: 210.")
    assert cause in first, result.stderr
    assert hint in first, result.stderr
    assert "Traceback" not in result.stderr
