"""docker-compose.yml is valid for Compose and describes the production deployment."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
SECRETS = {"SAMT124_WRITER_PASSWORD": "w", "SAMT124_ANALYST_PASSWORD": "a"}


def compose_config(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    program = shutil.which("docker-compose")
    if program is None:
        if os.environ.get("CI"):
            pytest.fail("docker-compose is missing: `make system` installs Debian's package")
        pytest.skip("docker-compose is not installed (make system)")
    return subprocess.run(
        [program, "-f", str(REPO / "docker-compose.yml"), "config"],
        env={"PATH": os.environ["PATH"], **env},
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO,
    )


@pytest.fixture(scope="module")
def resolved() -> dict[str, Any]:
    result = compose_config(SECRETS)
    assert result.returncode == 0, result.stderr
    config: dict[str, Any] = yaml.safe_load(result.stdout)
    return config


def test_compose_refuses_to_start_without_the_passwords() -> None:
    result = compose_config({})
    assert result.returncode != 0
    assert "SAMT124_WRITER_PASSWORD" in result.stderr


def test_images_are_pinned_and_services_complete(resolved: dict[str, Any]) -> None:
    services = resolved["services"]
    assert {"kafka", "clickhouse", "init", "worker", "sink", "lag-exporter"} <= set(services)
    for name, service in services.items():
        image = service.get("image", "")
        assert ":" in image, f"{name} image is not pinned"
        assert not image.endswith(":latest"), name
    assert services["kafka"]["image"].startswith("apache/kafka:4.")
    assert services["clickhouse"]["image"].startswith("clickhouse/clickhouse-server:")
    ours = {services[n]["image"] for n in ("init", "worker", "sink", "lag-exporter")}
    assert len(ours) == 1, "worker, sink and lag exporter run from one image"
    for name in ("kafka", "clickhouse", "lag-exporter"):
        assert "healthcheck" in services[name], name
    assert services["worker"]["environment"]["SAMT124_KAFKA_BOOTSTRAP"] == "kafka:9092"
    assert "kafka-data" in resolved["volumes"]
    assert "clickhouse-data" in resolved["volumes"]


def test_dockerfile_copies_every_package(resolved: dict[str, Any]) -> None:
    dockerfile = (REPO / "Dockerfile").read_text()
    for package in ("samt124", "producers", "streams", "consumers", "schemas"):
        assert f"COPY {package} ./{package}" in dockerfile
    assert resolved["services"]["worker"]["build"]["context"] == str(REPO)


def test_every_service_command_is_a_samt124_subcommand(resolved: dict[str, Any]) -> None:
    from samt124.cli import build_parser

    parser = build_parser()
    for name in ("init", "worker", "sink", "lag-exporter"):
        command = resolved["services"][name]["command"]
        args = parser.parse_args(command)
        assert callable(args.handler), name
