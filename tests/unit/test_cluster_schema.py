"""The single-node migrations rendered for a ClickHouse cluster (`samt124 init --cluster`)."""

from __future__ import annotations

import pytest

from consumers.clickhouse.cluster import NotForCluster, bookkeeping, render
from consumers.clickhouse.migrations import available


def _all(cluster: str = "c1") -> list[str]:
    return [
        statement
        for migration in available()
        for statement in migration.statements("db", dedup_tokens=True, cluster=cluster)
    ]


def test_every_statement_runs_on_the_whole_cluster() -> None:
    statements = _all()
    assert statements
    assert all(" ON CLUSTER c1" in statement for statement in statements)
    assert all("{db}" not in s and "{dedup}" not in s for s in statements)
    # block deduplication of replicated tables replaces the non-replicated window
    assert not any("non_replicated_deduplication_window" in s for s in statements)


def test_each_table_is_replicated_locally_and_distributed_by_request() -> None:
    statements = _all()
    events_local = next(
        s for s in statements if s.startswith("CREATE TABLE IF NOT EXISTS db.events_local ")
    )
    assert (
        "ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/db/events',"
        " '{replica}', ingested_at)" in events_local
    )
    assert "ORDER BY (province, occurred_at, event_id)" in events_local
    assert (
        "CREATE TABLE IF NOT EXISTS db.events ON CLUSTER c1 AS db.events_local"
        " ENGINE = Distributed(c1, db, events_local, sipHash64(request_id))"
    ) in statements
    sink_errors = next(
        s for s in statements if s.startswith("CREATE TABLE IF NOT EXISTS db.sink_errors ")
    )
    assert "sipHash64(topic, partition, offset)" in sink_errors


def test_views_read_the_distributed_tables_and_aggregates_stay_on_their_shard() -> None:
    statements = _all()
    unique = next(s for s in statements if "db.events_unique" in s)
    assert "FROM db.events FINAL LIMIT 1 BY event_id" in unique
    mv = next(s for s in statements if "MATERIALIZED VIEW" in s)
    assert "TO db.daily_counts_local" in mv
    assert "FROM db.events_local" in mv


def test_an_alter_changes_the_local_and_the_distributed_table() -> None:
    rendered = render(["ALTER TABLE {db}.events ADD COLUMN IF NOT EXISTS x String"], "c1")
    assert rendered == [
        "ALTER TABLE {db}.events_local ON CLUSTER c1 ADD COLUMN IF NOT EXISTS x String",
        "ALTER TABLE {db}.events ON CLUSTER c1 ADD COLUMN IF NOT EXISTS x String",
    ]


def test_a_statement_it_does_not_know_is_refused_not_passed_on() -> None:
    with pytest.raises(NotForCluster, match="DROP TABLE"):
        render(["DROP TABLE {db}.events"], "c1")


def test_the_migrations_table_is_one_for_the_whole_cluster() -> None:
    database, table = bookkeeping("db", "c1")
    assert database == "CREATE DATABASE IF NOT EXISTS db ON CLUSTER c1"
    assert "'/clickhouse/tables/all/db/schema_migrations', '{shard}-{replica}'" in table
