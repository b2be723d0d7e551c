"""A real Apache Kafka broker from Maven Central, in KRaft mode on loopback.

The broker's jars are fetched once by Maven into the cache directory; the storage is
formatted once; a single node runs the broker and controller roles together.
Kafka 4.1 is pinned: the 4.x line is KRaft-only (no ZooKeeper to carry), runs on the
machine's Java 17, and is the broker kafka-python 3 and aiokafka 0.14 are tested against.
"""

from __future__ import annotations

import socket
import subprocess
import uuid
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from devtools.local import tls
from devtools.local.process import Daemon, LocalServiceError, file_lock, require_tool
from samt124.settings import Settings

LOG4J_VERSION = "2.25.3"
SCRAM_MECHANISMS = ("SCRAM-SHA-256", "SCRAM-SHA-512")
NO_JAVA = (
    "samt124 runs its local Kafka broker with Java 17 and fetches it with Maven. "
    "Install them (Debian: apt-get install openjdk-17-jre-headless maven), or point samt124 "
    "at a running cluster with SAMT124_KAFKA_BOOTSTRAP=host:9092."
)


@dataclass(frozen=True)
class KafkaStatus:
    running: bool
    pid: int | None
    bootstrap: str
    data: Path
    secured: tuple[str, ...] = ()  # the optional listeners, for people


def secured_listeners(settings: Settings) -> tuple[str, ...]:
    """The optional SASL and TLS listeners of the local broker, described for people."""
    found: list[str] = []
    if settings.local_kafka_sasl_port is not None:
        found.append(
            f"SASL_PLAINTEXT 127.0.0.1:{settings.local_kafka_sasl_port}"
            " (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512)"
        )
    if settings.local_kafka_ssl_port is not None:
        where = tls.files(_daemon(settings).directory / "tls")
        found.append(
            f"SSL 127.0.0.1:{settings.local_kafka_ssl_port} (CA {where.ca},"
            f" client certificate {where.client_cert}, key {where.client_key})"
        )
    return tuple(found)


def template(name: str) -> str:
    return resources.files("devtools.local").joinpath("templates", name).read_text()


def jars(settings: Settings) -> Path:
    """The directory holding the broker's jars, fetched from Maven Central on first use."""
    version = settings.kafka_version
    root = settings.cache.resolve() / f"kafka-{version}"
    libs = root / "libs"
    complete = root / ".complete"
    if complete.exists():
        return libs
    mvn = require_tool("mvn", NO_JAVA)
    require_tool("java", NO_JAVA)
    with file_lock(root / ".lock"):
        if complete.exists():
            return libs
        root.mkdir(parents=True, exist_ok=True)
        pom = root / "pom.xml"
        pom.write_text(
            template("kafka-pom.xml")
            .replace("@KAFKA_VERSION@", version)
            .replace("@LOG4J_VERSION@", LOG4J_VERSION)
        )
        print(f"fetching Apache Kafka {version} from Maven Central into {libs} ...", flush=True)
        result = subprocess.run(
            [
                mvn,
                "-q",
                "-B",
                "-f",
                str(pom),
                "dependency:copy-dependencies",
                f"-DoutputDirectory={libs}",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise LocalServiceError(
                f"Maven could not fetch org.apache.kafka:kafka_2.13:{version}:\n"
                f"{result.stdout[-2000:]}{result.stderr[-2000:]}\n{NO_JAVA}"
            )
        complete.write_text(version)
    return libs


def _daemon(settings: Settings) -> Daemon:
    return Daemon("kafka", settings.home.resolve() / "kafka", marker="kafka.Kafka")


def java_command(libs: Path, *args: str, log4j: Path | None = None) -> list[str]:
    java = require_tool("java", NO_JAVA)
    command = [java, "-Xms256m", "-Xmx1g", "-XX:+UseG1GC", "-Djava.awt.headless=true"]
    if log4j is not None:
        command.append(f"-Dlog4j2.configurationFile={log4j}")
    return [*command, "-cp", f"{libs}/*", *args]


def _write_config(settings: Settings, directory: Path) -> Path:
    data = directory / "data"
    properties = directory / "server.properties"
    properties.write_text(
        template("server.properties")
        .replace("@PORT@", str(settings.local_kafka_port))
        .replace("@CONTROLLER_PORT@", str(settings.local_controller_port))
        .replace("@DATA@", str(data))
        .replace("@PARTITIONS@", str(settings.partitions))
        + _listeners(settings, directory)
    )
    (directory / "log4j2.properties").write_text(
        template("log4j2.properties").replace("@LOGS@", str(directory / "logs"))
    )
    return properties


def _listeners(settings: Settings, directory: Path) -> str:
    """Broker settings for the optional SASL_PLAINTEXT and SSL listeners beside PLAINTEXT."""
    extra: list[tuple[str, int]] = []  # (listener name = security protocol, port)
    lines: list[str] = []
    if settings.local_kafka_sasl_port is not None:
        extra.append(("SASL_PLAINTEXT", settings.local_kafka_sasl_port))
        lines += _sasl_settings(settings)
    if settings.local_kafka_ssl_port is not None:
        extra.append(("SSL", settings.local_kafka_ssl_port))
        lines += _ssl_settings(tls.ensure(directory / "tls"))
    if not extra:
        return ""
    base = settings.local_kafka_port
    own = [f"{name}://127.0.0.1:{port}" for name, port in extra]
    controller = f"CONTROLLER://127.0.0.1:{settings.local_controller_port}"
    protocols = ",".join(f"{name}:{name}" for name, _ in extra)
    return "\n".join(
        [
            "",
            "# optional listeners (local_kafka_sasl_port, local_kafka_ssl_port)",
            f"listeners={','.join([f'PLAINTEXT://127.0.0.1:{base}', controller, *own])}",
            f"advertised.listeners={','.join([f'PLAINTEXT://127.0.0.1:{base}', *own])}",
            "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT," + protocols,
            *lines,
            "",
        ]
    )


def _sasl_settings(settings: Settings) -> list[str]:
    """SASL with one user, kafka_sasl_username / kafka_sasl_password: PLAIN, and SCRAM once
    :func:`_scram_users` gave the user its credentials."""
    user = settings.kafka_sasl_username
    secret = settings.kafka_sasl_password
    if not user or secret is None:
        raise LocalServiceError(
            "a local SASL listener needs SAMT124_KAFKA_SASL_USERNAME and"
            " SAMT124_KAFKA_SASL_PASSWORD"
        )
    password = secret.get_secret_value()
    for value in (user, password):
        if '"' in value or "\\" in value or not value.isprintable():
            raise LocalServiceError("the SASL user name and password must be plain printable text")
    scram = "org.apache.kafka.common.security.scram.ScramLoginModule required;"
    return [
        f"sasl.enabled.mechanisms=PLAIN,{','.join(SCRAM_MECHANISMS)}",
        "listener.name.sasl_plaintext.plain.sasl.jaas.config="
        "org.apache.kafka.common.security.plain.PlainLoginModule required"
        f' user_{user}="{password}";',
        *(
            f"listener.name.sasl_plaintext.{name.lower()}.sasl.jaas.config={scram}"
            for name in SCRAM_MECHANISMS
        ),
    ]


def _scram_users(settings: Settings) -> None:
    """Give the SASL user its SCRAM credentials (stored by the broker; set again at each start)."""
    from kafka.admin import KafkaAdminClient, UserScramCredentialUpsertion

    if settings.local_kafka_sasl_port is None or not settings.kafka_sasl_username:
        return
    secret = settings.kafka_sasl_password
    password = secret.get_secret_value() if secret is not None else ""
    user = settings.kafka_sasl_username
    admin = KafkaAdminClient(bootstrap_servers=settings.bootstrap)
    failed: dict[str, str] = {}
    try:
        for name in SCRAM_MECHANISMS:  # one request each: the broker takes one change per user
            upsert = UserScramCredentialUpsertion(user, name, password)
            error = admin.alter_user_scram_credentials([upsert]).get(user)
            if error:
                failed[name] = str(error)
    finally:
        admin.close()
    if failed:
        raise LocalServiceError(f"the broker refused the SCRAM credentials: {failed}")


def _ssl_settings(files: tls.TlsFiles) -> list[str]:
    """TLS with PEM files; every client must show a certificate from the local authority."""
    return [
        "listener.name.ssl.ssl.keystore.type=PEM",
        f"listener.name.ssl.ssl.keystore.location={files.server}",
        "listener.name.ssl.ssl.truststore.type=PEM",
        f"listener.name.ssl.ssl.truststore.location={files.ca}",
        "listener.name.ssl.ssl.client.auth=required",
    ]


def _format_once(libs: Path, directory: Path, properties: Path) -> None:
    if (directory / "data" / "meta.properties").exists():
        return
    log4j = directory / "log4j2.properties"
    cluster_id = str(uuid.uuid4().hex[:22])
    result = subprocess.run(
        java_command(
            libs,
            "kafka.tools.StorageTool",
            "format",
            "-t",
            cluster_id,
            "-c",
            str(properties),
            log4j=log4j,
        ),
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise LocalServiceError(f"formatting KRaft storage failed:\n{result.stdout}{result.stderr}")


def answers(bootstrap: str, timeout_ms: int = 2000) -> bool:
    """True when the broker answers a metadata request."""
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError

    if not any(listening(server) for server in bootstrap.split(",")):
        return False
    try:
        admin = KafkaAdminClient(
            bootstrap_servers=bootstrap,
            request_timeout_ms=timeout_ms,
        )
    except (KafkaError, OSError, ValueError):
        return False
    try:
        admin.describe_cluster()
    except (KafkaError, OSError):
        return False
    finally:
        admin.close()
    return True


def listening(server: str) -> bool:
    host, _, port = server.strip().rpartition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=1.0):
            return True
    except (OSError, ValueError):
        return False


def up(settings: Settings, timeout: float = 120.0) -> KafkaStatus:
    """Start the local broker (or find it running) and wait until it answers."""
    daemon = _daemon(settings)
    with file_lock(daemon.directory / ".lock"):
        process = None
        if daemon.pid() is None:
            libs = jars(settings)
            daemon.directory.mkdir(parents=True, exist_ok=True)
            properties = _write_config(settings, daemon.directory)
            _format_once(libs, daemon.directory, properties)
            process = daemon.start(
                java_command(
                    libs,
                    "kafka.Kafka",
                    str(properties),
                    log4j=daemon.directory / "log4j2.properties",
                )
            )
        try:
            daemon.wait_ready(lambda: answers(settings.bootstrap), timeout, process)
            _scram_users(settings)
        except BaseException:
            if process is not None:  # started here and not usable: leave nothing running
                daemon.stop(timeout=60.0)
            raise
    return status(settings)


def down(settings: Settings) -> bool:
    """Stop the local broker cleanly; True if it was running."""
    return _daemon(settings).stop(timeout=60.0)


def status(settings: Settings) -> KafkaStatus:
    daemon = _daemon(settings)
    return KafkaStatus(
        running=daemon.pid() is not None,
        pid=daemon.pid(),
        bootstrap=settings.bootstrap,
        data=daemon.directory / "data",
        secured=secured_listeners(settings),
    )
