-- samt124's analytics schema, version 1: raw events, SLA facts, sink rejects, consumer lag.
--
-- Portability: this SQL runs unchanged on Debian's ClickHouse 18.16 server and on current
-- ClickHouse (chdb 26.9, the production image). It therefore avoids LowCardinality,
-- DateTime64, TTL, CODEC, Map, the JSON type and positional GROUP BY, and uses the engine
-- syntax both accept: ENGINE = ReplacingMergeTree(version) PARTITION BY ... ORDER BY ...
-- Two placeholders are filled in by consumers/clickhouse/migrations.py:
--   {db}     the database;
--   {dedup}  "SETTINGS non_replicated_deduplication_window = N" where the engine supports
--            insert deduplication tokens (ClickHouse 22.2+), empty on 18.16.
-- Times are DateTime('Asia/Tehran') (whole seconds) plus the event time in epoch milliseconds
-- (occurred_ms) to order facts of one request; Jalali calendar columns come from the sink.
--
-- Exactly once for analysts: the sink delivers at least once; the ReplacingMergeTree keeps one
-- row per sorting key (an event's key never changes), and analysts read through the
-- events_unique view (FINAL, then one row per event_id).

CREATE TABLE IF NOT EXISTS {db}.events (
    event_id String,
    event_type String,
    request_id String,
    province String,
    body_id String,
    body_kind String,
    category String,
    channel String,
    priority String,
    requester_hash String,
    occurred_at DateTime('Asia/Tehran'),
    occurred_ms Int64,
    recorded_at DateTime('Asia/Tehran'),
    ingested_at DateTime('Asia/Tehran'),
    jalali_year UInt16,
    jalali_month UInt8,
    jalali_week UInt8,
    topic String,
    partition UInt32,
    offset UInt64,
    payload String
) ENGINE = ReplacingMergeTree(ingested_at)
PARTITION BY toYYYYMM(occurred_at)
ORDER BY (province, occurred_at, event_id)
{dedup};

CREATE VIEW IF NOT EXISTS {db}.events_unique AS
SELECT * FROM {db}.events FINAL LIMIT 1 BY event_id;

CREATE TABLE IF NOT EXISTS {db}.sla_events (
    event_id String,
    event_type String,
    request_id String,
    clock String,
    cycle UInt16,
    threshold_percent UInt8,
    level String,
    due_at DateTime('Asia/Tehran'),
    body_id String,
    province String,
    policy_id String,
    policy_version String,
    occurred_at DateTime('Asia/Tehran'),
    occurred_ms Int64,
    ingested_at DateTime('Asia/Tehran'),
    jalali_year UInt16,
    jalali_month UInt8,
    jalali_week UInt8
) ENGINE = ReplacingMergeTree(ingested_at)
PARTITION BY toYYYYMM(occurred_at)
ORDER BY (province, occurred_at, event_id)
{dedup};

CREATE VIEW IF NOT EXISTS {db}.sla_events_unique AS
SELECT * FROM {db}.sla_events FINAL LIMIT 1 BY event_id;

CREATE TABLE IF NOT EXISTS {db}.sink_errors (
    topic String,
    partition UInt32,
    offset UInt64,
    reason String,
    raw_hex String,
    ingested_at DateTime('Asia/Tehran')
) ENGINE = ReplacingMergeTree(ingested_at)
PARTITION BY toYYYYMM(ingested_at)
ORDER BY (topic, partition, offset)
{dedup};

CREATE TABLE IF NOT EXISTS {db}.lag_samples (
    group String,
    topic String,
    partition UInt32,
    committed Int64,
    end Int64,
    lag Int64,
    lag_seconds Float64,
    status String,
    sampled_at DateTime('Asia/Tehran')
) ENGINE = MergeTree
PARTITION BY toYYYYMM(sampled_at)
ORDER BY (group, topic, partition, sampled_at);
