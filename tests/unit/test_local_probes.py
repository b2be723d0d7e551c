"""The readiness probes of ``samt124 local up``: a server not answering yet is no warning."""

from __future__ import annotations

import logging
import socket

import pytest

from devtools.local import clickhouse


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_clickhouse_server_not_up_yet_is_no_answer_and_no_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    driver_log = logging.getLogger("clickhouse_driver.connection")
    before = driver_log.level
    assert clickhouse.answers(closed_port()) is False
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
    assert driver_log.level == before
