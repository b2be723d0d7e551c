"""Certificates for the local services' optional TLS ports (the broker's listener, the ClickHouse
server's native port), made once with ``openssl``.

A private certificate authority signs one certificate for the server (``localhost`` and
``127.0.0.1``) and one for clients; the broker's listener asks every client for a certificate
from that authority (mutual TLS), the ClickHouse server asks none. The files stay in
``<home>/kafka/tls`` (``<home>/clickhouse/tls`` for the server's) and are reused by later starts:
point ``SAMT124_KAFKA_SSL_CAFILE``, ``SAMT124_KAFKA_SSL_CERTFILE`` and
``SAMT124_KAFKA_SSL_KEYFILE`` at ``ca.pem``, ``client.pem`` and ``client-key.pem``.
They are for trying secured clients on one machine, not for production.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from devtools.local.process import LocalServiceError, require_tool

NO_OPENSSL = (
    "the local TLS listener makes its certificates with the openssl command "
    "(Debian: apt-get install openssl); or leave SAMT124_LOCAL_KAFKA_SSL_PORT and "
    "SAMT124_LOCAL_CLICKHOUSE_SECURE_PORT unset"
)
DAYS = 825
SERVER_EXTENSIONS = (
    "basicConstraints=critical,CA:FALSE\n"
    "keyUsage=critical,digitalSignature,keyEncipherment\n"
    "extendedKeyUsage=serverAuth\n"
    "subjectAltName=DNS:localhost,IP:127.0.0.1\n"
    "subjectKeyIdentifier=hash\n"
    "authorityKeyIdentifier=keyid,issuer\n"
)
CLIENT_EXTENSIONS = (
    "basicConstraints=critical,CA:FALSE\n"
    "keyUsage=critical,digitalSignature,keyEncipherment\n"
    "extendedKeyUsage=clientAuth\n"
    "subjectKeyIdentifier=hash\n"
    "authorityKeyIdentifier=keyid,issuer\n"
)


@dataclass(frozen=True)
class TlsFiles:
    ca: Path  # the authority's certificate: what clients and the broker trust
    server: Path  # the server's private key and certificate chain, one PEM file
    client_cert: Path
    client_key: Path


def files(directory: Path) -> TlsFiles:
    return TlsFiles(
        ca=directory / "ca.pem",
        server=directory / "broker.pem",  # named after its first user; kept for older homes
        client_cert=directory / "client.pem",
        client_key=directory / "client-key.pem",
    )


def ensure(directory: Path) -> TlsFiles:
    """The certificate files in ``directory``, made first if any is missing."""
    wanted = files(directory)
    if all(path.exists() for path in vars(wanted).values()):
        return wanted
    openssl = require_tool("openssl", NO_OPENSSL)
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o700)
    ca_key = directory / "ca-key.pem"
    _run(
        openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256",
        "-keyout", str(ca_key), "-out", str(wanted.ca), "-days", str(DAYS),
        "-subj", "/CN=samt124 local CA",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
    )  # fmt: skip
    server_key = directory / "broker-key.pem"
    server_cert = directory / "broker-cert.pem"
    _signed(openssl, directory, "localhost", SERVER_EXTENSIONS, server_key, server_cert, ca_key)
    _signed(
        openssl,
        directory,
        "samt124-client",
        CLIENT_EXTENSIONS,
        wanted.client_key,
        wanted.client_cert,
        ca_key,
    )
    # Kafka's PEM key store: the unencrypted PKCS#8 key, then the chain up to the authority
    chain = server_key.read_text() + server_cert.read_text() + wanted.ca.read_text()
    wanted.server.write_text(chain)
    for path in (ca_key, server_key, wanted.server, wanted.client_key):
        path.chmod(0o600)
    return wanted


def _signed(
    openssl: str,
    directory: Path,
    name: str,
    extensions: str,
    key: Path,
    cert: Path,
    ca_key: Path,
) -> None:
    request = directory / f"{name}.csr"
    config = directory / f"{name}.ext"
    config.write_text(extensions)
    _run(
        openssl, "req", "-newkey", "rsa:2048", "-nodes", "-sha256",
        "-keyout", str(key), "-out", str(request), "-subj", f"/CN={name}",
    )  # fmt: skip
    _run(
        openssl, "x509", "-req", "-in", str(request), "-sha256", "-days", str(DAYS),
        "-CA", str(directory / "ca.pem"), "-CAkey", str(ca_key), "-CAcreateserial",
        "-extfile", str(config), "-out", str(cert),
    )  # fmt: skip
    request.unlink()
    config.unlink()


def _run(*command: str) -> None:
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise LocalServiceError(
            f"openssl could not make the local TLS certificates ({' '.join(command[1:3])}):\n"
            f"{result.stderr[-2000:]}"
        )
