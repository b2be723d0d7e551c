"""docker-compose.cluster.yml is valid for Compose and describes samt124 on clusters: three
Kafka brokers, a ClickHouse cluster of two shards of two replicas with ClickHouse Keeper, two
workers, the sink and the lag exporter (naming every server, to go on on another when one stops
answering); the ClickHouse and Keeper configurations it mounts name the same servers."""

from __future__ import annotations

import os
import shutil
import subprocess
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "docker-compose.cluster.yml"
SECRETS = {
    "SAMT124_WRITER_PASSWORD": "w",
    "SAMT124_ANALYST_PASSWORD": "a",
    "SAMT124_CLUSTER_SECRET": "s",
}
BROKERS = ("kafka-1", "kafka-2", "kafka-3")
SERVERS = ("clickhouse-1", "clickhouse-2", "clickhouse-3", "clickhouse-4")
KEEPERS = ("keeper-1", "keeper-2", "keeper-3")


def compose_config(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    program = shutil.which("docker-compose")
    if program is None:
        if os.environ.get("CI"):
            pytest.fail("docker-compose is missing: `make system` installs Debian's package")
        pytest.skip("docker-compose is not installed (make system)")
    return subprocess.run(
        [program, "-f", str(COMPOSE), "config"],
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


def test_compose_refuses_to_start_without_each_secret() -> None:
    for name in SECRETS:
        result = compose_config({k: v for k, v in SECRETS.items() if k != name})
        assert result.returncode != 0
        assert name in result.stderr


def test_the_services_and_their_images(resolved: dict[str, Any]) -> None:
    services = resolved["services"]
    wanted = {*BROKERS, *SERVERS, *KEEPERS, "init", "worker", "sink", "lag-exporter"}
    assert wanted <= set(services)
    for name, service in services.items():
        image = service.get("image", "")
        assert ":" in image, name
        assert not image.endswith(":latest"), name
    for name in (*BROKERS, *SERVERS, *KEEPERS):
        assert "healthcheck" in services[name], name
    assert services["worker"]["deploy"]["replicas"] == 2
    ours = {services[n]["image"] for n in ("init", "worker", "sink", "lag-exporter")}
    assert len(ours) == 1


def test_three_brokers_one_quorum_and_replicated_internal_topics(
    resolved: dict[str, Any],
) -> None:
    services = resolved["services"]
    envs = [services[name]["environment"] for name in BROKERS]
    assert sorted(env["KAFKA_NODE_ID"] for env in envs) == ["1", "2", "3"]
    voters = {env["KAFKA_CONTROLLER_QUORUM_VOTERS"] for env in envs}
    assert voters == {"1@kafka-1:9093,2@kafka-2:9093,3@kafka-3:9093"}
    assert len({env["CLUSTER_ID"] for env in envs}) == 1
    for name, env in zip(BROKERS, envs, strict=True):
        assert env["KAFKA_ADVERTISED_LISTENERS"] == f"PLAINTEXT://{name}:9092"
        assert env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == "3"
        assert env["KAFKA_MIN_INSYNC_REPLICAS"] == "2"
        assert env["KAFKA_UNCLEAN_LEADER_ELECTION_ENABLE"] == "false"
    volumes = {_mounts(services[name])["/var/lib/kafka/data"] for name in BROKERS}
    assert len(volumes) == 3  # each broker its own data


def test_the_pipeline_uses_every_broker_and_the_clickhouse_cluster(
    resolved: dict[str, Any],
) -> None:
    from samt124.cli import build_parser
    from samt124.settings import Settings

    services = resolved["services"]
    parser = build_parser()
    for name in ("init", "worker", "sink", "lag-exporter"):
        env = services[name]["environment"]
        assert env["SAMT124_KAFKA_BOOTSTRAP"].split(",") == [f"{b}:9092" for b in BROKERS]
        assert env["SAMT124_CLICKHOUSE_CLUSTER"] == "samt124"
        target = Settings(
            clickhouse_url=env["SAMT124_CLICKHOUSE_URL"],
            clickhouse_cluster=env["SAMT124_CLICKHOUSE_CLUSTER"],
        ).clickhouse
        assert target.addresses == [(server, 9000) for server in SERVERS], name  # fails over
        assert (target.user, target.cluster) == ("samt124_writer", "samt124")
        args = parser.parse_args(services[name]["command"])
        assert callable(args.handler), name
    assert services["init"]["command"] == ["init", "--cluster", "samt124"]


def _mounts(service: dict[str, Any]) -> dict[str, str]:
    """Target: source of a service's volumes (short or long syntax, as Compose prints them)."""
    found: dict[str, str] = {}
    for volume in service["volumes"]:
        if isinstance(volume, dict):
            found[volume["target"]] = volume["source"]
        else:
            source, target, *_ = str(volume).split(":")
            found[target] = source
    return found


def _xml(path: str) -> ET.Element:
    return ET.parse(REPO / path).getroot()


def test_each_server_is_one_replica_of_the_cluster_it_mounts(resolved: dict[str, Any]) -> None:
    services = resolved["services"]
    cluster = _xml("deploy/clickhouse-cluster/config.d/cluster.xml")
    shards = cluster.findall("remote_servers/samt124/shard")
    layout = {
        replica.findtext("host"): f"{number:02d}"
        for number, shard in enumerate(shards, start=1)
        for replica in shard.findall("replica")
    }
    assert set(layout) == set(SERVERS)
    assert all(s.findtext("internal_replication") == "true" for s in shards)
    macros: Counter[tuple[str, str]] = Counter()
    for name in SERVERS:
        env = services[name]["environment"]
        assert env["CLICKHOUSE_REPLICA"] == name
        assert env["CLICKHOUSE_SHARD"] == layout[name], name
        macros[(env["CLICKHOUSE_SHARD"], env["CLICKHOUSE_REPLICA"])] += 1
        mounts = _mounts(services[name])
        assert mounts["/etc/clickhouse-server/config.d/cluster.xml"].endswith(
            "deploy/clickhouse-cluster/config.d/cluster.xml"
        )
        assert mounts["/etc/clickhouse-server/users.d/samt124.xml"].endswith(
            "deploy/clickhouse-cluster/users.d/samt124.xml"
        )
    assert set(macros.values()) == {1}
    keepers = {node.findtext("host") for node in cluster.findall("zookeeper/node")}
    assert keepers == set(KEEPERS)
    assert cluster.find("macros/shard").attrib == {"from_env": "CLICKHOUSE_SHARD"}  # type: ignore[union-attr]


def test_the_keepers_form_one_quorum(resolved: dict[str, Any]) -> None:
    services = resolved["services"]
    keeper = _xml("deploy/clickhouse-keeper/keeper.xml")
    raft = {
        server.findtext("id"): server.findtext("hostname")
        for server in keeper.findall("keeper_server/raft_configuration/server")
    }
    assert raft == {"1": "keeper-1", "2": "keeper-2", "3": "keeper-3"}
    for number, name in enumerate(KEEPERS, start=1):
        assert services[name]["environment"]["KEEPER_SERVER_ID"] == str(number)


def test_the_writer_may_run_on_cluster_statements_and_analysts_only_read() -> None:
    users = _xml("deploy/clickhouse-cluster/users.d/samt124.xml")
    writer = [q.text for q in users.findall("users/samt124_writer/grants/query")]
    analyst = [q.text for q in users.findall("users/samt124_analyst/grants/query")]
    assert "GRANT CLUSTER ON *.*" in writer
    assert analyst == ["GRANT SELECT ON samt124.*"]
