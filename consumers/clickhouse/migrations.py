"""Versioned schema migrations, ``consumers/clickhouse/schema/NNN_name.sql``, applied once each.

Each applied version is recorded in ``<db>.schema_migrations``; running :func:`migrate` again
applies only what is new. Statements are separated by ``;`` at the end of a line. The
placeholders ``{db}`` and ``{dedup}`` are described atop ``001_events.sql``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.resources import files

from consumers.clickhouse import cluster as on_cluster
from consumers.clickhouse.engine import Engine, supports_dedup_token

# Insert-deduplication memory per partition: how many recent insert tokens ClickHouse keeps.
DEDUP_WINDOW = 10_000
_NAME = re.compile(r"^(\d{3})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    def statements(
        self,
        database: str,
        *,
        dedup_tokens: bool,
        cluster: str | None = None,
        earlier: Sequence[Migration] = (),
    ) -> list[str]:
        """The statements for ``database``; with ``cluster``, rendered for that ClickHouse
        cluster (:mod:`consumers.clickhouse.cluster`), knowing what the ``earlier`` migrations
        created."""
        dedup = (
            f"SETTINGS non_replicated_deduplication_window = {DEDUP_WINDOW}"
            if dedup_tokens and cluster is None
            else ""
        )
        parts = self.parts()
        if cluster is not None:
            before = [part for migration in earlier for part in migration.parts()]
            parts = on_cluster.render(parts, cluster, before)
        return [part.replace("{db}", database).replace("{dedup}", dedup) for part in parts]

    def parts(self) -> list[str]:
        """The statements as written, comments left out, placeholders not filled in."""
        body = "\n".join(
            line for line in self.sql.splitlines() if not line.lstrip().startswith("--")
        )
        return [part.strip() for part in re.split(r";\s*$", body, flags=re.M) if part.strip()]


def available() -> list[Migration]:
    """The migrations shipped with samt124, in version order."""
    found = []
    for entry in files("consumers.clickhouse").joinpath("schema").iterdir():
        match = _NAME.match(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    found.sort(key=lambda migration: migration.version)
    versions = [migration.version for migration in found]
    if len(set(versions)) != len(versions):
        raise ValueError(f"two migrations share a version: {versions}")
    return found


def applied(engine: Engine) -> set[int]:
    _, rows = engine.query(f"SELECT version FROM {engine.database}.schema_migrations")
    return {int(version) for (version,) in rows}


def migrate(engine: Engine, cluster: str | None = None) -> list[Migration]:
    """Create the database and apply the migrations not yet recorded; returns those applied.

    With ``cluster``, everything is created on every node of that ClickHouse cluster (its
    ``remote_servers`` name), as :mod:`consumers.clickhouse.cluster` renders it."""
    db = engine.database
    if cluster is not None:
        for statement in on_cluster.bookkeeping(db, cluster):
            engine.execute(statement)
    else:
        engine.execute(f"CREATE DATABASE IF NOT EXISTS {db}")
        engine.execute(
            f"CREATE TABLE IF NOT EXISTS {db}.schema_migrations "
            "(version UInt32, name String, applied_at DateTime('Asia/Tehran')) "
            "ENGINE = MergeTree ORDER BY version"
        )
    done = applied(engine)
    tokens = supports_dedup_token(engine)
    newly = []
    every = available()
    for index, migration in enumerate(every):
        if migration.version in done:
            continue
        statements = migration.statements(
            db, dedup_tokens=tokens, cluster=cluster, earlier=every[:index]
        )
        for statement in statements:
            engine.execute(statement)
        row = (migration.version, migration.name, datetime.now(UTC))
        engine.insert("schema_migrations", ("version", "name", "applied_at"), [row], None)
        newly.append(migration)
    return newly
