"""One small interface over the two ClickHouse engines samt124 writes to and reads from.

:class:`ServerEngine` speaks the native protocol to a ClickHouse server (clickhouse-driver,
TLS with ``clickhouses://``); :class:`ChdbEngine` runs ClickHouse in-process (chdb) on a
directory.

chdb's process model: a chdb directory is held by one process at a time. chdb takes an
exclusive lock on ``<path>/status`` for as long as a session is open, and a second process
fails at once ("Cannot lock file ... status"). So :func:`connect` retries opening a locked
directory for ``lock_timeout`` seconds, and the sink opens a chdb session per batch and closes
it after the insert: a report run while the sink is working waits for at most one batch.
A reader that holds the directory longer (a long report) makes the sink wait, never lose data.
chdb prints the error of each failed open to stderr itself; those lines are held back while it
waits, and a wait longer than a second is said once, in a line of samt124's own.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import date, datetime
from typing import Any, Protocol

from samt124.settings import Address, ClickHouseTarget, address_text

Row = tuple[Any, ...]
# insert_deduplication_token exists from ClickHouse 22.2; Debian's 18.16 server lacks it.
DEDUP_TOKEN_SINCE = (22, 2)
CHDB_LOCK_MARKERS = ("Cannot lock file", "Error initializing EmbeddedServer")
SAY_WAIT_AFTER = 1.0  # seconds of waiting for a locked chdb directory before it is said
log = logging.getLogger("samt124.clickhouse")


class EngineError(Exception):
    """ClickHouse refused a statement or could not be reached."""


TLS_HINTS = (
    (
        "CERTIFICATE_VERIFY_FAILED",
        "the server's certificate is not trusted here: add ?ca_certs=PATH, the authority that"
        " signed it, to SAMT124_CLICKHOUSE_URL",
    ),
    (
        "WRONG_VERSION_NUMBER",
        "that port does not speak TLS: use clickhouse:// for it, or the server's secure port",
    ),
)


PLAIN_TO_TLS = "if that is the server's TLS port, the URL starts with clickhouses://"


UNKNOWN_DATABASE = 81  # the server's error code when the database named does not exist


def server_trouble(text: str, *, secure: bool = True) -> str:
    """A server error as one line for people, with a hint when a TLS mistake explains it."""
    text = text.split("Stack trace:", maxsplit=1)[0].strip()
    hints = [hint for marker, hint in TLS_HINTS if marker in text]
    if not secure and "Code: 210. Connection reset by peer" in text:
        hints.append(PLAIN_TO_TLS)
    return f"{text} ({hints[0]})" if hints else text


class EngineBusy(EngineError):
    """The chdb directory stayed locked by another process for the whole timeout."""


class Engine(Protocol):
    """What samt124 needs from ClickHouse."""

    @property
    def database(self) -> str: ...

    @property
    def version(self) -> tuple[int, ...]: ...

    def execute(self, sql: str) -> None: ...

    def query(self, sql: str) -> tuple[list[str], list[Row]]: ...

    def insert(
        self, table: str, columns: Sequence[str], rows: Sequence[Row], dedup_token: str | None
    ) -> None: ...

    def close(self) -> None: ...


def supports_dedup_token(engine: Engine) -> bool:
    """True when inserts may carry ``insert_deduplication_token`` (ClickHouse 22.2 and later)."""
    return engine.version[:2] >= DEDUP_TOKEN_SINCE


def parse_version(text: str) -> tuple[int, ...]:
    """``"18.16.1"`` -> ``(18, 16, 1)``."""
    return tuple(int(part) for part in text.split(".") if part.isdigit())


class ServerEngine:
    """A ClickHouse server over the native protocol.

    With other servers named (``alt_hosts``, replicas of one cluster), clickhouse-driver
    connects to the first that answers in the order named, checks the connection before each
    statement and, when it was lost, connects again the same way: a statement that fails on a
    server that went away raises :class:`EngineError`, and the next goes to a replica. Which
    server is used is logged when it is not the first named, or when it changes.
    """

    def __init__(self, target: ClickHouseTarget, *, readonly: bool = False) -> None:
        from clickhouse_driver import Client

        settings: dict[str, Any] = {}
        if target.cluster is not None:
            # on several shards, an IN or JOIN subquery over a Distributed table is read from
            # the whole cluster once and sent to every shard (GLOBAL IN), as on one server
            settings["distributed_product_mode"] = "global"
        if readonly:
            settings["readonly"] = 1
        self._database = target.database
        self._secure = target.secure
        self._first: Address = (target.host, target.port)
        self._server: Address | None = None
        others = {"alt_hosts": ",".join(map(address_text, target.alt_hosts))}
        # on a cluster, an insert into a Distributed table returns once every shard has it
        # (not once it is queued on this node): the sink commits only what is stored
        self._cluster = target.cluster is not None
        self._quorum = target.insert_quorum

        def client(database: str | None) -> Any:
            return Client(
                target.host,
                port=target.port,
                user=target.user,
                password=target.password.get_secret_value(),
                connect_timeout=5,
                send_receive_timeout=300,
                settings=settings,
                **({"database": database} if database else {}),
                **(others if target.alt_hosts else {}),
                **target.tls_options(),
            )

        # the target database is the session's current one, so a name in `samt124 sql` needs
        # no prefix; before `samt124 init` has created it, the server's default is used
        self._client = client(target.database)
        try:
            [(text,)] = self._run("SELECT version()")
        except EngineError as error:
            if getattr(error.__cause__, "code", None) != UNKNOWN_DATABASE:
                raise
            self._client.disconnect()
            self._client = client(None)
            [(text,)] = self._run("SELECT version()")
        self._version = parse_version(str(text))

    @property
    def database(self) -> str:
        return self._database

    @property
    def version(self) -> tuple[int, ...]:
        return self._version

    def _run(self, sql: str, *args: Any, **kwargs: Any) -> Any:
        from clickhouse_driver.errors import Error

        try:
            return self._client.execute(sql, *args, **kwargs)
        except (Error, OSError, EOFError) as error:
            raise EngineError(server_trouble(str(error), secure=self._secure)) from error
        finally:
            self._note_server()

    def _note_server(self) -> None:
        """Log the server in use when it is not the first named, or when it changed."""
        connection = getattr(self._client, "connection", None)
        host, port = getattr(connection, "host", None), getattr(connection, "port", None)
        if host is None or port is None or (host, port) == self._server:
            return
        now: Address = (str(host), int(port))
        if self._server is not None:
            log.warning(
                "ClickHouse: %s stopped answering; on %s now",
                address_text(self._server),
                address_text(now),
            )
        elif now != self._first:
            log.warning(
                "ClickHouse: %s did not answer; on %s", address_text(self._first), address_text(now)
            )
        self._server = now

    def execute(self, sql: str) -> None:
        self._run(sql)

    def query(self, sql: str) -> tuple[list[str], list[Row]]:
        rows, types = self._run(sql, with_column_types=True)
        return [name for name, _ in types], [tuple(row) for row in rows]

    def insert(
        self, table: str, columns: Sequence[str], rows: Sequence[Row], dedup_token: str | None
    ) -> None:
        if not rows:
            return
        settings: dict[str, Any] = {}
        if dedup_token is not None and supports_dedup_token(self):
            settings["insert_deduplication_token"] = dedup_token
        if self._cluster:
            settings["insert_distributed_sync"] = 1
        if self._quorum:
            settings["insert_quorum"] = self._quorum
        sql = f"INSERT INTO {self._database}.{table} ({', '.join(columns)}) VALUES"
        # columnar: the driver packs each column at once instead of walking row by row
        self._run(sql, _columns(rows, len(columns)), settings=settings, columnar=True)

    def close(self) -> None:
        self._client.disconnect()


class ChdbEngine:
    """ClickHouse in-process on a directory (one process at a time, see the module notes)."""

    def __init__(self, target: ClickHouseTarget, *, lock_timeout: float = 30.0) -> None:
        from chdb.session import Session

        if target.path is None:
            raise EngineError("chdb needs a directory")
        target.path.mkdir(parents=True, exist_ok=True)
        self._database = target.database
        started = time.monotonic()
        deadline = started + lock_timeout
        said = False
        while True:
            try:
                with _stderr_without(CHDB_LOCK_MARKERS):
                    self._session = Session(str(target.path))
                break
            except RuntimeError as error:
                if not any(marker in str(error) for marker in CHDB_LOCK_MARKERS):
                    raise EngineError(str(error)) from error
                if not said and time.monotonic() - started >= SAY_WAIT_AFTER:
                    said = True
                    log.warning(
                        "waiting for the chdb directory %s: another process has it open"
                        " (up to %.0f s)",
                        target.path,
                        lock_timeout,
                    )
                if time.monotonic() >= deadline:
                    message = (
                        f"the chdb directory {target.path} is in use by another process "
                        f"(chdb allows one process per directory; waited {lock_timeout:.0f} s)"
                    )
                    raise EngineBusy(message) from error
                time.sleep(0.05)
        [(text,)] = self.query("SELECT version()")[1]
        self._version = parse_version(str(text))
        self.use_database()

    def use_database(self) -> None:
        """Make the target database the session's current one once it exists (as on a server)."""
        [(present,)] = self.query(
            f"SELECT count() FROM system.databases WHERE name = {quote(self._database)}"
        )[1]
        if present:
            self._run(f"USE {self._database}")

    @property
    def database(self) -> str:
        return self._database

    @property
    def version(self) -> tuple[int, ...]:
        return self._version

    def _run(self, sql: str, output: str = "CSV") -> Any:
        try:
            return self._session.query(sql, output)
        except RuntimeError as error:
            raise EngineError(str(error)) from error

    def execute(self, sql: str) -> None:
        self._run(sql)

    def query(self, sql: str) -> tuple[list[str], list[Row]]:
        result = self._run(sql, "JSONCompact")
        text = result.bytes().decode()
        if not text.strip():
            return [], []
        parsed = json.loads(text)
        columns = [column["name"] for column in parsed["meta"]]
        types = [column["type"] for column in parsed["meta"]]
        rows = [
            tuple(_from_json(value, kind) for value, kind in zip(row, types, strict=True))
            for row in parsed["data"]
        ]
        return columns, rows

    def insert(
        self, table: str, columns: Sequence[str], rows: Sequence[Row], dedup_token: str | None
    ) -> None:
        if not rows:
            return
        settings = ""
        if dedup_token is not None:
            settings = f" SETTINGS insert_deduplication_token = {quote(dedup_token)}"
        names = ", ".join(columns)
        data = [_plain_column(column) for column in _columns(rows, len(columns))]
        if all(column is not None for column in data):
            # chdb reads the dict of lists in place (its Python() table function finds the
            # local by name): no text to format and parse, several times JSONEachRow's rate
            frame = dict(zip(columns, data, strict=True))
            picked = ", ".join(f"`{name}`" for name in frame)
            self._run(
                f"INSERT INTO {self._database}.{table} ({names}){settings}"
                f" SELECT {picked} FROM Python(frame)"
            )
            return
        # a column chdb cannot take as a plain list (nulls, mixed numbers): one JSON per row
        self.insert_json(table, columns, rows, dedup_token)

    def insert_json(
        self,
        table: str,
        columns: Sequence[str],
        rows: Sequence[Row],
        dedup_token: str | None = None,
    ) -> None:
        """Insert rows as JSONEachRow text: any column type, at a fraction of list speed."""
        settings = ""
        if dedup_token is not None:
            settings = f" SETTINGS insert_deduplication_token = {quote(dedup_token)}"
        names = ", ".join(columns)
        lines = "\n".join(
            json.dumps(dict(zip(columns, map(_to_json, row), strict=True)), ensure_ascii=False)
            for row in rows
        )
        self._run(
            f"INSERT INTO {self._database}.{table} ({names}){settings} FORMAT JSONEachRow\n{lines}"
        )

    def close(self) -> None:
        self._session.close()


def _columns(rows: Sequence[Row], width: int) -> list[list[Any]]:
    """Rows as columns."""
    if not rows:
        return [[] for _ in range(width)]
    return [list(column) for column in zip(*rows, strict=True)]


INT64 = (-(2**63), 2**63 - 1)


def _plain_column(column: list[Any]) -> list[Any] | None:
    """The column as chdb's Python() table function takes it (all ``str`` or all ``int`` in
    Int64; instants as epoch seconds), or None when it is not that plain."""
    kind = type(column[0])
    if kind is datetime:
        if not all(type(value) is datetime for value in column):
            return None
        column = [int(value.timestamp()) for value in column]
        kind = int
    if kind is str:
        return column if all(type(value) is str for value in column) else None
    if kind is int and all(type(value) is int for value in column):
        return column if INT64[0] <= min(column) and max(column) <= INT64[1] else None
    return None


def _to_json(value: Any) -> Any:
    if isinstance(value, datetime):
        return int(value.timestamp())
    if isinstance(value, date):
        return value.isoformat()
    return value


_INTEGER_TYPES = ("Int", "UInt")


def _from_json(value: Any, kind: str) -> Any:
    """JSONCompact quotes 64-bit integers; give them back as ``int`` like the native driver."""
    bare = kind.removeprefix("Nullable(").rstrip(")")
    if isinstance(value, str) and bare.startswith(_INTEGER_TYPES):
        return int(value)
    return value


def quote(text: str) -> str:
    """A ClickHouse string literal."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


@contextmanager
def _stderr_without(markers: Sequence[str]) -> Iterator[None]:
    """Run a block with file descriptor 2 captured, then pass on every line but those that
    carry a marker (chdb writes some errors to stderr from C++ before raising them)."""
    sys.stderr.flush()
    saved = os.dup(2)
    wanted = [marker.encode() for marker in markers]
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            kept = [line for line in capture if not any(m in line for m in wanted)]
            if kept:
                os.write(2, b"".join(kept))


def connect(
    target: ClickHouseTarget, *, readonly: bool = False, lock_timeout: float = 30.0
) -> Engine:
    """An open engine for ``target``; ``readonly`` applies to servers (``readonly=1``)."""
    if target.engine == "chdb":
        return ChdbEngine(target, lock_timeout=lock_timeout)
    return ServerEngine(target, readonly=readonly)


@contextmanager
def opened(
    target: ClickHouseTarget, *, readonly: bool = False, lock_timeout: float = 30.0
) -> Iterator[Engine]:
    """:func:`connect`, closed on the way out."""
    engine = connect(target, readonly=readonly, lock_timeout=lock_timeout)
    try:
        yield engine
    finally:
        engine.close()
