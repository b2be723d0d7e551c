"""The one typed, frozen settings object.

Values come from ``SAMT124_*`` environment variables, then from command-line flags
(the CLI passes them as keyword overrides). Read once at start-up with :func:`load`;
never at import time.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qs, unquote, urlparse, urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]
Address = tuple[str, int]


class ClickHouseTarget(BaseModel):
    """Where analytics live: the embedded engine (chdb) or a server over the native protocol.

    A server may be named with others (``alt_hosts``), replicas of one cluster: clients connect
    to the first that answers, in the order named, and to the next when it stops answering.
    """

    model_config = ConfigDict(frozen=True)

    engine: Literal["chdb", "server"]
    path: Path | None = None
    host: str = "127.0.0.1"
    port: int = 9000
    alt_hosts: tuple[Address, ...] = ()  # the other servers to use when this one is away
    user: str = "default"
    password: SecretStr = SecretStr("")
    database: str = "samt124"
    secure: bool = False  # TLS (clickhouses://)
    verify: bool = True  # check the server's certificate and host name
    ca_certs: Path | None = None  # the authority that signed it; unset: the system's
    certfile: Path | None = None  # a client certificate, for servers that ask for one
    keyfile: Path | None = None
    cluster: str | None = None  # the ClickHouse cluster the schema lives on (server only)
    insert_quorum: int = 0  # replicas of a shard that store an insert before it returns; 0: one

    def describe(self) -> str:
        if self.engine == "chdb":
            return f"chdb (embedded) at {self.path} database {self.database}"
        scheme = "clickhouses" if self.secure else "clickhouse"
        hosts = ",".join(address_text(address) for address in self.addresses)
        where = f"{scheme}://{self.user}@{hosts}/{self.database}"
        return f"{where} on cluster {self.cluster}" if self.cluster else where

    @property
    def addresses(self) -> list[Address]:
        """Every server named, the first first."""
        return [(self.host, self.port), *self.alt_hosts]

    def tls_options(self) -> dict[str, Any]:
        """TLS options in clickhouse-driver's vocabulary (none for plain connections)."""
        if not self.secure:
            return {}
        options: dict[str, Any] = {"secure": True, "verify": self.verify}
        for name in ("ca_certs", "certfile", "keyfile"):
            if (path := getattr(self, name)) is not None:
                options[name] = str(path)
        return options


class Settings(BaseSettings):
    """Everything samt124 needs to know about where it runs."""

    model_config = SettingsConfigDict(env_prefix="SAMT124_", frozen=True, extra="ignore")

    home: Path = Field(
        default=Path(".samt124"),
        description="Local data directory: broker data, embedded analytics, pid files, logs.",
    )
    cache: Path = Field(
        default=Path(".samt124/cache"),
        description="Downloaded artifacts (the Kafka broker's jars), shared by every home.",
    )

    debug: bool = Field(
        default=False,
        description="Tracebacks and the Kafka and ClickHouse clients' own log lines (--debug).",
    )
    connect_timeout: float = Field(
        default=2.0,
        gt=0,
        description="Seconds to wait for Kafka or a ClickHouse server to answer before a command"
        " says that it cannot reach them.",
    )

    # Kafka
    kafka_bootstrap: str | None = Field(
        default=None, description="Bootstrap servers; unset means the local broker."
    )
    kafka_security_protocol: SecurityProtocol = "PLAINTEXT"
    kafka_sasl_mechanism: SaslMechanism | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_cafile: Path | None = None
    kafka_ssl_certfile: Path | None = None
    kafka_ssl_keyfile: Path | None = None
    topic_namespace: str = Field(
        default="samt124", description="Topic name prefix: <namespace>.intake, .province.<code>..."
    )
    partitions: int = Field(default=4, ge=1, description="Partitions for topics samt124 creates.")
    worker_id: str | None = Field(
        default=None,
        description="The worker's static member id in its consumer group; unset: the host name"
        " and the home directory. A restarted worker with the same id gets its partitions back"
        " without a rebalance; two running workers must never share one.",
    )
    worker_store: Literal["rocksdb", "memory"] = Field(
        default="rocksdb",
        description="Where the worker keeps the request states: rocksdb (on disk under the"
        " home, a restart reads only the changelog records written since) or memory (the whole"
        " changelog is read at each start).",
    )
    replication_factor: int | None = Field(
        default=None,
        ge=1,
        description="Replicas of each topic samt124 creates; unset: min(3, brokers in the"
        " cluster). With 3 or more, the topics get min.insync.replicas=2.",
    )
    province_retention_ms: int = Field(
        default=90 * 24 * 3600 * 1000,
        ge=-1,
        description="How long the provincial topics keep routed events, in ms (-1: forever;"
        " default 90 days). The intake topic and the dead letters are kept forever.",
    )
    sla_retention_ms: int = Field(
        default=90 * 24 * 3600 * 1000,
        ge=-1,
        description="How long the SLA topic keeps warnings, breaches and escalations, in ms"
        " (-1: forever; default 90 days).",
    )

    # Fault injection, for tests of the worker's guarantees only (0: off)
    fault_rate: float = Field(
        default=0.0,
        ge=0.0,
        le=1.0,
        description="Fraction of intake messages whose decision is made to raise (a test mode).",
    )
    fault_batch_rate: float = Field(
        default=0.0,
        ge=0.0,
        le=1.0,
        description="Batch faults per message the worker takes: the batch in hand fails there,"
        " outside the per-message guard (a test mode: the worker restarts from its committed"
        " offsets).",
    )
    fault_seed: int = Field(default=0, description="Seed of the injected faults.")

    # Versioned rule files (defaults: the ones samt124 ships)
    referral_rules: Path | None = Field(default=None, description="Referral rules JSON file.")
    sla_policies: Path | None = Field(default=None, description="SLA policies JSON file.")
    calendars: Path | None = Field(default=None, description="Working calendars JSON file.")

    # ClickHouse
    clickhouse_url: str | None = Field(
        default=None,
        description="clickhouse://user:pass@host:9000/db for a server, or"
        " clickhouse://user:pass@host1:9000,host2:9000/db for replicas of the cluster"
        " (clickhouse_cluster): the first that answers is used; unset means chdb in home.",
    )
    clickhouse_user: str | None = None
    clickhouse_password: SecretStr | None = None
    clickhouse_database: str = "samt124"
    clickhouse_cluster: str | None = Field(
        default=None,
        description="The ClickHouse cluster (a remote_servers name) the schema lives on: `init`"
        " creates it ON CLUSTER with replicated local tables and Distributed tables over them;"
        " the sink inserts into those synchronously. Unset: one server.",
    )
    clickhouse_insert_quorum: int = Field(
        default=0,
        ge=0,
        le=9,
        description="On a cluster, the replicas of a shard that must have stored an insert"
        " before it is acknowledged (ClickHouse's insert_quorum; it waits up to"
        " insert_quorum_timeout, then fails and the sink sends the batch again). 0: one.",
    )
    pii_hash_key: SecretStr | None = Field(
        default=None, description="HMAC key for requesters' national ids; unset stores none."
    )

    # Prometheus metrics of the worker and the sink (`--metrics HOST:PORT` wins)
    metrics_host: str = Field(
        default="127.0.0.1", description="Address the worker's or sink's /metrics listens on."
    )
    metrics_port: int | None = Field(
        default=None, ge=1, le=65535, description="Port of /metrics; unset: no metrics endpoint."
    )

    # The local services started by `samt124 local up`
    local_kafka_port: int = 9092
    local_controller_port: int = 9093
    local_kafka_brokers: int = Field(
        default=1,
        ge=1,
        le=9,
        description="Nodes of the local Kafka cluster (`samt124 local up --brokers N`); node n"
        " listens on local_kafka_port + 2(n-1), its controller on local_controller_port + 2(n-1).",
    )
    # a SASL_PLAINTEXT listener (PLAIN, SCRAM-SHA-256/512) for trying secured clients locally;
    # its one user is kafka_sasl_username / kafka_sasl_password
    local_kafka_sasl_port: int | None = None
    # a TLS listener asking clients for a certificate (mutual TLS); `local up` makes a private
    # authority, a broker and a client certificate in <home>/kafka/tls
    local_kafka_ssl_port: int | None = None
    local_clickhouse_port: int = 9000
    local_clickhouse_http_port: int = 8123
    # a TLS port for the native protocol; `local up` makes a private authority and a server
    # certificate in <home>/clickhouse/tls
    local_clickhouse_secure_port: int | None = None
    local_clickhouse_replicas: int = Field(
        default=1,
        ge=1,
        le=9,
        description="ClickHouse servers in each shard of the local cluster (`samt124 local up"
        " --clickhouse-replicas N`): N replicas, ZooKeeper for coordination; server n (shard by"
        " shard) listens on local_clickhouse_port + 10(n-1).",
    )
    local_clickhouse_shards: int = Field(
        default=1,
        ge=1,
        le=9,
        description="Shards of the local ClickHouse cluster (`samt124 local up"
        " --clickhouse-shards N`), each of local_clickhouse_replicas servers.",
    )
    local_zookeeper_port: int = 2181
    kafka_version: str = "4.1.1"

    # The 124 service API (`samt124 api`)
    api_listen: str = Field(
        default="127.0.0.1:8124", description="HOST:PORT the API listens on (--listen)."
    )
    api_keys: Path | None = Field(
        default=None, description="The API key file; unset means <home>/api-keys.json."
    )
    api_max_body: int = Field(
        default=64 * 1024, ge=1024, description="Largest request body the API reads, in bytes."
    )
    api_linger_ms: int = Field(
        default=0,
        ge=0,
        le=1000,
        description="How long the API's producer holds a send for others to share its produce"
        " request, in ms (each POST waits for its own confirmation).",
    )

    @property
    def api_keys_path(self) -> Path:
        return self.api_keys or self.home / "api-keys.json"

    @property
    def bootstrap(self) -> str:
        """The bootstrap servers to use: the configured cluster or the local broker."""
        if self.kafka_bootstrap:
            return self.kafka_bootstrap
        return ",".join(
            f"127.0.0.1:{self.local_kafka_port + 2 * node}"
            for node in range(self.local_kafka_brokers)
        )

    @property
    def uses_local_kafka(self) -> bool:
        return not self.kafka_bootstrap  # unset, or set to nothing

    def kafka_client_options(self) -> dict[str, Any]:
        """Security options in kafka-python's vocabulary."""
        options: dict[str, Any] = {
            "bootstrap_servers": self.bootstrap.split(","),
            "security_protocol": self.kafka_security_protocol,
        }
        if self.kafka_sasl_mechanism:
            options["sasl_mechanism"] = self.kafka_sasl_mechanism
            options["sasl_plain_username"] = self.kafka_sasl_username
            if self.kafka_sasl_password is not None:
                options["sasl_plain_password"] = self.kafka_sasl_password.get_secret_value()
        if self.kafka_ssl_cafile:
            options["ssl_cafile"] = str(self.kafka_ssl_cafile)
        if self.kafka_ssl_certfile:
            options["ssl_certfile"] = str(self.kafka_ssl_certfile)
        if self.kafka_ssl_keyfile:
            options["ssl_keyfile"] = str(self.kafka_ssl_keyfile)
        return options

    @property
    def clickhouse(self) -> ClickHouseTarget:
        """Parse the ClickHouse URL; unset means the embedded engine in ``home/chdb``."""
        if not self.clickhouse_url:
            return ClickHouseTarget(
                engine="chdb", path=self.home / "chdb", database=self.clickhouse_database
            )
        target = parse_clickhouse_url(
            self.clickhouse_url,
            user=self.clickhouse_user,
            password=self.clickhouse_password,
            default_database=self.clickhouse_database,
        )
        if target.engine != "server":
            return target
        if self.clickhouse_cluster is None:
            if self.clickhouse_insert_quorum:
                msg = (
                    "SAMT124_CLICKHOUSE_INSERT_QUORUM counts the replicas of a ClickHouse cluster,"
                    " named by SAMT124_CLICKHOUSE_CLUSTER (one server has no replicas)"
                )
                raise ValueError(msg)
            if target.alt_hosts:
                msg = (
                    f"SAMT124_CLICKHOUSE_URL names {len(target.addresses)} servers: they are"
                    " replicas of one ClickHouse cluster, named by SAMT124_CLICKHOUSE_CLUSTER"
                    " (or `init --cluster NAME`); without a cluster each server has its own tables"
                )
                raise ValueError(msg)
            return target
        return target.model_copy(
            update={
                "cluster": self.clickhouse_cluster,
                "insert_quorum": self.clickhouse_insert_quorum,
            }
        )


def child_environment(settings: Settings) -> dict[str, str]:
    """This process's environment, with ``SAMT124_*`` giving a child exactly ``settings``."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("SAMT124_")}
    for name in sorted(settings.model_fields_set):
        value = getattr(settings, name)
        if value is not None:
            env[f"SAMT124_{name.upper()}"] = _env_text(value)
    env["SAMT124_HOME"] = str(settings.home.resolve())
    env["SAMT124_CACHE"] = str(settings.cache.resolve())
    env["SAMT124_KAFKA_BOOTSTRAP"] = settings.bootstrap
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _env_text(value: object) -> str:
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, Path):
        return str(value.resolve())
    return str(value)


def parse_clickhouse_url(
    url: str,
    *,
    user: str | None = None,
    password: SecretStr | None = None,
    default_database: str = "samt124",
) -> ClickHouseTarget:
    """``clickhouse://user:pass@host:9000/db``, ``chdb:///path``, or for TLS
    ``clickhouses://user:pass@host:9440/db`` with optional ``?ca_certs=PATH``,
    ``&certfile=PATH&keyfile=PATH`` (a client certificate) and ``&verify=false``.

    Several servers, replicas of one cluster, are named with commas:
    ``clickhouse://user:pass@host1:9000,host2:9000/db``; the first is used while it answers."""
    parsed = urlparse(url)
    if parsed.scheme == "chdb":
        path = Path(unquote(parsed.path)) if parsed.path else Path(".samt124/chdb")
        return ClickHouseTarget(engine="chdb", path=path, database=default_database)
    if parsed.scheme not in ("clickhouse", "clickhouses"):
        msg = (
            "SAMT124_CLICKHOUSE_URL must start with clickhouse://, clickhouses:// (TLS) or"
            f" chdb://, got {url!r}"
        )
        raise ValueError(msg)
    secure = parsed.scheme == "clickhouses"
    options = _tls_query(parsed.query, secure)
    database = parsed.path.lstrip("/") or default_database
    secret = password or SecretStr(unquote(parsed.password or ""))
    (host, port), *others = _addresses(parsed.netloc.rpartition("@")[2], 9440 if secure else 9000)
    return ClickHouseTarget(
        engine="server",
        host=host,
        port=port,
        alt_hosts=tuple(others),
        user=user or unquote(parsed.username or "default"),
        password=secret,
        database=database,
        secure=secure,
        **options,
    )


def _addresses(hosts: str, default_port: int) -> list[Address]:
    """``host1:9000,[::1]:9000,host3`` -> the servers as (host, port), the default port where
    none is given; nothing at all is the local server."""
    if not hosts:
        return [("127.0.0.1", default_port)]
    found: list[Address] = []
    for item in hosts.split(","):
        parsed = urlsplit(f"//{item}")
        try:
            port = parsed.port
        except ValueError:
            port = 0
        if not parsed.hostname or port == 0 or item.endswith(":"):
            msg = (
                f"{item!r} in the ClickHouse URL is not a server: host or host:port (a port"
                " from 1 to 65535), servers separated by commas"
            )
            raise ValueError(msg)
        address = (parsed.hostname, port or default_port)
        if address in found:
            msg = f"the ClickHouse URL names {address_text(address)} twice"
            raise ValueError(msg)
        found.append(address)
    return found


def address_text(address: Address) -> str:
    """``host:port``, ``[::1]:port`` for an IPv6 address."""
    host, port = address
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


TLS_QUERY = ("ca_certs", "certfile", "keyfile", "verify")


def _tls_query(query: str, secure: bool) -> dict[str, Any]:
    given = parse_qs(query, keep_blank_values=True, strict_parsing=False)
    unknown = sorted(set(given) - set(TLS_QUERY))
    if unknown:
        msg = (
            f"unknown option(s) in the ClickHouse URL: {', '.join(unknown)}"
            f" (known: {', '.join(TLS_QUERY)})"
        )
        raise ValueError(msg)
    if given and not secure:
        msg = f"{', '.join(sorted(given))} in the ClickHouse URL need TLS: use clickhouses://"
        raise ValueError(msg)
    options: dict[str, Any] = {
        name: Path(values[-1]) for name, values in given.items() if name != "verify"
    }
    if "verify" in given:
        flag = given["verify"][-1].lower()
        if flag not in ("true", "false", "1", "0"):
            msg = f"verify in the ClickHouse URL is true or false, got {flag!r}"
            raise ValueError(msg)
        options["verify"] = flag in ("true", "1")
    return options


def load(**overrides: Any) -> Settings:
    """Read the environment once; flags given on the command line win."""
    given = {key: value for key, value in overrides.items() if value is not None}
    return Settings(**given)
