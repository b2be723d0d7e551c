"""The worker's static member id in its consumer group (streams.app.instance_id)."""

from __future__ import annotations

import socket
from pathlib import Path

from samt124.settings import Settings
from streams.app import instance_id


def test_the_configured_id_is_used_as_given(tmp_path: Path) -> None:
    assert instance_id(Settings(home=tmp_path, worker_id="worker-tehran-1")) == "worker-tehran-1"


def test_without_one_the_host_and_the_home_make_it(tmp_path: Path) -> None:
    one = instance_id(Settings(home=tmp_path / "a"))
    again = instance_id(Settings(home=tmp_path / "a"))
    other = instance_id(Settings(home=tmp_path / "b"))
    assert one == again  # a restart with the same home gets its partitions back
    assert one != other  # two workers with their own homes are two members
    assert one.startswith(socket.gethostname() + "-")
