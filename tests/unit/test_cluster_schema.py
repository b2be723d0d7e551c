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
    requests = next(s for s in statements if "VIEW IF NOT EXISTS db.requests " in s)
    assert "FROM db.events_unique" in requests
    mv = next(s for s in statements if "MATERIALIZED VIEW" in s)
    assert "TO db.daily_counts_local" in mv
    assert "FROM db.events_local" in mv


def test_one_row_per_event_is_kept_on_each_shard_and_read_through_a_distributed_table() -> None:
    statements = _all()
    for view, table, by in (
        ("events_unique", "events", "event_id"),
        ("sla_events_unique", "sla_events", "event_id"),
        ("sla_deadlines_unique", "sla_deadlines", "event_id, clock"),
    ):
        assert (
            f"CREATE VIEW IF NOT EXISTS db.{view}_local ON CLUSTER c1 AS"
            f" SELECT * FROM db.{table}_local FINAL LIMIT 1 BY {by}"
        ) in statements
        assert (
            f"CREATE TABLE IF NOT EXISTS db.{view} ON CLUSTER c1 AS db.{table}_local"
            f" ENGINE = Distributed(c1, db, {view}_local)"
        ) in statements
    # FINAL with LIMIT BY never reads a Distributed table (18.16 fails on two shards)
    assert not any(
        "FINAL LIMIT 1 BY" in s and f"FROM db.{t} " in s
        for s in statements
        for t in ("events", "sla_events", "sla_deadlines")
    )


def test_an_alter_changes_the_local_table_and_makes_the_distributed_one_again() -> None:
    earlier = available()[0].parts()
    rendered = render(["ALTER TABLE {db}.events ADD COLUMN x String"], "c1", earlier)
    assert rendered == [
        "ALTER TABLE {db}.events_local ON CLUSTER c1 ADD COLUMN x String",
        "DROP TABLE IF EXISTS {db}.events ON CLUSTER c1",
        "CREATE TABLE IF NOT EXISTS {db}.events ON CLUSTER c1 AS {db}.events_local"
        " ENGINE = Distributed(c1, {db}, events_local, sipHash64(request_id))",
    ]
    with pytest.raises(NotForCluster, match="ALTER of events"):
        render(["ALTER TABLE {db}.events ADD COLUMN x String"], "c1")  # not known to be made


def test_a_statement_it_does_not_know_is_refused_not_passed_on() -> None:
    with pytest.raises(NotForCluster, match="DROP TABLE"):
        render(["DROP TABLE {db}.events"], "c1")


def test_the_migrations_table_is_one_for_the_whole_cluster() -> None:
    database, table = bookkeeping("db", "c1")
    assert database == "CREATE DATABASE IF NOT EXISTS db ON CLUSTER c1"
    assert "'/clickhouse/tables/all/db/schema_migrations', '{shard}-{replica}'" in table
