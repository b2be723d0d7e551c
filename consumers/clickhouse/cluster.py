"""The analytics schema on a ClickHouse cluster: the single-node migrations rendered
``ON CLUSTER``, with replicated local tables and ``Distributed`` tables over them.

The migrations in ``schema/`` are written for one server. For a cluster each statement becomes:

- ``CREATE TABLE {db}.t (...) ENGINE = XMergeTree(args) ...``: a local table ``{db}.t_local`` on
  every node, ``ReplicatedXMergeTree('/clickhouse/tables/{shard}/{db}/t', '{replica}', args)``,
  and ``{db}.t``, a ``Distributed`` table over them, sharded by ``sipHash64(request_id)`` (every
  fact of a request, and every copy of one event, on one shard) or, for a table without a
  request, by its sorting key;
- a materialized view reads the local table it is defined on and writes to the local target,
  so that each shard aggregates its own inserts;
- a view that keeps one row per key, ``SELECT * FROM {db}.t FINAL LIMIT 1 BY key`` (the
  ``_unique`` views), is done on each shard: ``{db}.v_local``, the same query over the local
  table ``{db}.t_local``, and ``{db}.v``, a ``Distributed`` table over those views. Every copy
  of a row lives on the shard its request names, so each shard's answer is already the whole
  answer for its rows (and ClickHouse 18.16 cannot run ``FINAL`` with ``LIMIT BY`` over a
  ``Distributed`` table of two shards or more: ``Cannot find column ingested_at``);
- any other view is created ``ON CLUSTER`` unchanged: it reads the ``Distributed`` tables
  under the same names as on one server, so the reports run unchanged;
- ``ALTER TABLE {db}.t ...`` alters the local table (created in this migration or an earlier
  one); its ``Distributed`` table is dropped and made again with the new columns: it holds no
  rows, and reads and inserts through it fail for that moment (the sink sends its batch
  again). A view keeps the columns it was made with (ClickHouse 18.16), on one server as on
  a cluster.

The sink inserts into the ``Distributed`` tables; a batch it sends again is the same block for
the same shard, which the replicated tables drop (block deduplication), and analysts read
through the ``_unique`` views in any case. ``{shard}`` and ``{replica}`` are each server's
macros; ``schema_migrations`` is one replicated table shared by every node.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

LOCAL = "_local"

_CREATE_TABLE = re.compile(
    r"^CREATE TABLE IF NOT EXISTS \{db\}\.(?P<name>\w+) (?P<columns>\(.*?\n\))"
    r"\s*ENGINE = (?P<engine>\w*MergeTree)(?:\((?P<args>[^)]*)\))?(?P<rest>.*)$",
    re.S,
)
_MATERIALIZED = re.compile(
    r"^CREATE MATERIALIZED VIEW IF NOT EXISTS \{db\}\.(?P<name>\w+) TO \{db\}\.(?P<to>\w+)"
    r"(?P<select>\s+AS\s.*)$",
    re.S,
)
_UNIQUE_VIEW = re.compile(
    r"^CREATE VIEW IF NOT EXISTS \{db\}\.(?P<name>\w+) AS\s+SELECT \* FROM \{db\}\.(?P<table>\w+)"
    r" FINAL (?P<by>LIMIT 1 BY [\w, ]+)$",
    re.S,
)
_VIEW = re.compile(r"^CREATE VIEW IF NOT EXISTS \{db\}\.(?P<name>\w+)(?P<rest>\s+AS\s.*)$", re.S)
_ALTER = re.compile(r"^ALTER TABLE \{db\}\.(?P<name>\w+) (?P<rest>.*)$", re.S)
_ORDER = re.compile(r"ORDER BY (\(.*?\)|\w+)")


class NotForCluster(ValueError):
    """A statement the cluster rendering does not know how to carry over."""


def _engine(name: str, engine: str, args: str | None) -> str:
    path = f"'/clickhouse/tables/{{shard}}/{{db}}/{name}', '{{replica}}'"
    inner = f"{path}, {args}" if args else path
    return f"Replicated{engine}({inner})"


def _shard_key(columns: str, rest: str) -> str:
    if re.search(r"^\s*request_id String", columns, re.M):
        return "sipHash64(request_id)"
    order = _ORDER.search(rest)
    if order is None:
        return "rand()"
    return f"sipHash64{order[1] if order[1].startswith('(') else f'({order[1]})'}"


def render(statements: Sequence[str], cluster: str, earlier: Sequence[str] = ()) -> list[str]:
    """The statements of one migration (``{db}`` not yet filled in) for ``cluster``;
    ``earlier``, those of the migrations before it, as written for one server."""
    on = f" ON CLUSTER {cluster}"
    keys: dict[str, str] = {}  # table -> its shard key
    for statement in (*earlier, *statements):
        if created := _CREATE_TABLE.match(statement):
            keys[created["name"]] = _shard_key(created["columns"], created["rest"])

    def distributed(name: str, table: str, key: str = "") -> str:
        over = f"{name}{LOCAL}, {key}" if key else f"{name}{LOCAL}"
        return (
            f"CREATE TABLE IF NOT EXISTS {{db}}.{name}{on} AS {{db}}.{table}{LOCAL}"
            f" ENGINE = Distributed({cluster}, {{db}}, {over})"
        )

    out: list[str] = []
    for statement in statements:
        if match := _CREATE_TABLE.match(statement):
            name = match["name"]
            rest = match["rest"].replace("{dedup}", "").rstrip()
            engine = _engine(name, match["engine"], match["args"])
            out.append(
                f"CREATE TABLE IF NOT EXISTS {{db}}.{name}{LOCAL}{on} {match['columns']}"
                f" ENGINE = {engine}{rest}"
            )
            out.append(distributed(name, name, keys[name]))
        elif match := _MATERIALIZED.match(statement):
            select = re.sub(r"FROM \{db\}\.(\w+)", rf"FROM {{db}}.\1{LOCAL}", match["select"])
            out.append(
                f"CREATE MATERIALIZED VIEW IF NOT EXISTS {{db}}.{match['name']}{on}"
                f" TO {{db}}.{match['to']}{LOCAL}{select}"
            )
        elif match := _UNIQUE_VIEW.match(statement):
            name, table = match["name"], match["table"]
            out.append(
                f"CREATE VIEW IF NOT EXISTS {{db}}.{name}{LOCAL}{on} AS"
                f" SELECT * FROM {{db}}.{table}{LOCAL} FINAL {match['by']}"
            )
            out.append(distributed(name, table))
        elif match := _VIEW.match(statement):
            out.append(f"CREATE VIEW IF NOT EXISTS {{db}}.{match['name']}{on}{match['rest']}")
        elif match := _ALTER.match(statement):
            name = match["name"]
            if name not in keys:
                raise NotForCluster(f"cannot render for a cluster: ALTER of {name}, not created")
            out.append(f"ALTER TABLE {{db}}.{name}{LOCAL}{on} {match['rest']}")
            # its Distributed table is made again with the new columns (ClickHouse 18.16 alters
            # no Distributed table ON CLUSTER when the shards have replicas)
            out.append(f"DROP TABLE IF EXISTS {{db}}.{name}{on}")
            out.append(distributed(name, name, keys[name]))
        else:
            first = statement.strip().splitlines()[0]
            raise NotForCluster(f"cannot render for a cluster: {first}")
    return out


def bookkeeping(database: str, cluster: str) -> list[str]:
    """The database and ``schema_migrations`` on every node (one replicated table)."""
    return [
        f"CREATE DATABASE IF NOT EXISTS {database} ON CLUSTER {cluster}",
        f"CREATE TABLE IF NOT EXISTS {database}.schema_migrations ON CLUSTER {cluster} "
        "(version UInt32, name String, applied_at DateTime('Asia/Tehran')) "
        f"ENGINE = ReplicatedMergeTree('/clickhouse/tables/all/{database}/schema_migrations',"
        " '{shard}-{replica}') ORDER BY version",
    ]
