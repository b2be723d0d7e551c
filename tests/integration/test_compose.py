"""docker-compose.yml is valid for Compose and describes the production deployment."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
PRODUCT = ("samt124", "producers", "streams", "consumers", "schemas", "api", "dashboard")
SECRETS = {
    "SAMT124_WRITER_PASSWORD": "w",
    "SAMT124_ANALYST_PASSWORD": "a",
    "SAMT124_GRAFANA_PASSWORD": "g",
}


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
    assert {"kafka", "clickhouse", "init", "worker", "sink", "lag-exporter", "api"} <= set(services)
    for name, service in services.items():
        image = service.get("image", "")
        assert ":" in image, f"{name} image is not pinned"
        assert not image.endswith(":latest"), name
    assert services["kafka"]["image"].startswith("apache/kafka:4.")
    assert services["clickhouse"]["image"].startswith("clickhouse/clickhouse-server:")
    ours = {services[n]["image"] for n in ("init", "worker", "sink", "lag-exporter", "api")}
    assert len(ours) == 1, "worker, sink and lag exporter run from one image"
    for name in ("kafka", "clickhouse", "lag-exporter", "api"):
        assert "healthcheck" in services[name], name
    assert services["worker"]["environment"]["SAMT124_KAFKA_BOOTSTRAP"] == "kafka:9092"
    assert "kafka-data" in resolved["volumes"]
    assert "clickhouse-data" in resolved["volumes"]


def test_dockerfile_copies_every_package(resolved: dict[str, Any]) -> None:
    dockerfile = (REPO / "Dockerfile").read_text()
    for package in PRODUCT:
        assert f"COPY {package} ./{package}" in dockerfile
    assert resolved["services"]["worker"]["build"]["context"] == str(REPO)


def test_every_service_command_is_a_samt124_subcommand(resolved: dict[str, Any]) -> None:
    from samt124.cli import build_parser

    parser = build_parser()
    for name in ("init", "worker", "sink", "lag-exporter", "api"):
        command = resolved["services"][name]["command"]
        args = parser.parse_args(command)
        assert callable(args.handler), name


@pytest.fixture(scope="module")
def image_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel ``pip install .`` builds from what the Dockerfile copies, and nothing else."""
    context = tmp_path_factory.mktemp("image")
    copied = re.findall(r"^COPY (.+) \S+$", (REPO / "Dockerfile").read_text(), re.M)
    for source in (name for line in copied for name in line.split()):
        if (REPO / source).is_dir():
            ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
            shutil.copytree(REPO / source, context / source, ignore=ignore)
        else:
            shutil.copy(REPO / source, context / source)
    out = tmp_path_factory.mktemp("wheel")
    build = ["wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(out), str(context)]
    subprocess.run(
        [sys.executable, "-m", "pip", *build],
        check=True,
        capture_output=True,
    )
    (wheel,) = out.glob("samt124-*.whl")
    return wheel


def test_the_image_ships_the_product_and_no_development_tooling(image_wheel: Path) -> None:
    names = zipfile.ZipFile(image_wheel).namelist()
    tops = {name.split("/")[0] for name in names if "/" in name and ".dist-info" not in name}
    assert tops == set(PRODUCT)
    assert not [name for name in names if re.search(r"devtools|/bench/|/local/|demo", name)]
    for data in (
        "samt124/domain/data/referral_rules.json",
        "samt124/domain/data/sla_policies.json",
        "samt124/domain/data/calendars.json",
        "samt124/domain/data/holidays_ir.json",
        "consumers/clickhouse/schema/001_events.sql",
        "schemas/RequestSubmitted.avsc",
        "schemas/released/1/RequestSubmitted.avsc",
        "dashboard/static/index.html",
        "dashboard/static/dashboard.js",
    ):
        assert data in names


def test_the_image_command_line_names_the_development_commands_it_lacks(
    image_wheel: Path, tmp_path: Path
) -> None:
    installed = tmp_path / "site"
    zipfile.ZipFile(image_wheel).extractall(installed)
    # -S: no .pth files, so the source checkout (and its devtools) is not importable.
    path = [str(installed), sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]]
    program = f"import sys; sys.path[:0] = {path!r}; from samt124.cli import main; "

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        code = program + f"sys.exit(main({list(args)!r}))"
        return subprocess.run(
            [sys.executable, "-S", "-c", code],
            capture_output=True,
            text=True,
            check=False,
            cwd=tmp_path,
        )

    for command in ("local", "bench", "demo", "calendar"):
        result = run(command, "up")
        assert result.returncode == 2, result.stderr
        assert "development commands, not installed in this image" in result.stdout
    assert run("worker", "--help").returncode == 0
    checked = run("schemas", "check")
    assert checked.returncode == 0, checked.stderr
