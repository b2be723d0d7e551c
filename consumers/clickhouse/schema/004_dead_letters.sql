-- samt124's analytics schema, version 4: the dead letters of samt124.dlq, with their bytes.
--
-- Portability as in 001_events.sql (no LowCardinality, DateTime64, Map, JSON type; the engine
-- syntax both 18.16 and current ClickHouse accept). One row per dead-letter message, named by
-- its place (topic, partition, offset): a batch the sink stores twice collapses to one row in
-- the ReplacingMergeTree, and readers who need exact counts use FINAL or count distinct places.
--   reason, error_type            the worker's dlq-reason and dlq-error headers
--   reason_kind                   the reason's kind (samt124.contract.dead_letters.KINDS)
--   source_*                      where the original was read (-1 when a header is missing)
--   dead_at                       when the worker dead-lettered it (dlq-at, else the record time)
--   event_*, request_id           of the original when it decodes, empty otherwise
--   key_hex, original_hex         the original's key and bytes, exactly, in hex
--   headers                       the message's headers as a JSON object of texts
-- The original bytes may hold a requester's personal data: grant this table to operators only.

CREATE TABLE IF NOT EXISTS {db}.dead_letters (
    topic String,
    partition UInt32,
    offset UInt64,
    reason String,
    reason_kind String,
    error_type String,
    source_topic String,
    source_partition Int64,
    source_offset Int64,
    dead_at DateTime('Asia/Tehran'),
    event_type String,
    event_id String,
    request_id String,
    key_hex String,
    original_hex String,
    headers String,
    ingested_at DateTime('Asia/Tehran')
) ENGINE = ReplacingMergeTree(ingested_at)
PARTITION BY toYYYYMM(dead_at)
ORDER BY (topic, partition, offset)
{dedup};
