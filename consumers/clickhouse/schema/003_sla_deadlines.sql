-- Where each request's SLA clocks stand after every fact that moved them, for reports that
-- compute at query time which requests are past which deadline (at any instant, with or
-- without the worker's breach facts).
--
-- One row per SlaDeadlinesSet fact and clock: the clock's cycle and policy, its target and the
-- working time banked (microseconds), whether it runs and since when, whether it stopped, and
-- the deadline the worker computed (epoch milliseconds; 0: none). Same portability rules and
-- placeholders as 001_events.sql; sla_deadlines_unique keeps one row per fact and clock.

CREATE TABLE IF NOT EXISTS {db}.sla_deadlines (
    event_id String,
    request_id String,
    clock String,
    cycle UInt16,
    policy_id String,
    target_us Int64,
    elapsed_us Int64,
    running UInt8,
    running_since_ms Int64,
    stopped UInt8,
    due_ms Int64,
    province String,
    body_id String,
    body_kind String,
    status String,
    policy_version String,
    occurred_at DateTime('Asia/Tehran'),
    occurred_ms Int64,
    ingested_at DateTime('Asia/Tehran'),
    topic String,
    partition UInt32,
    offset UInt64
) ENGINE = ReplacingMergeTree(ingested_at)
PARTITION BY toYYYYMM(occurred_at)
ORDER BY (request_id, occurred_ms, event_id, clock)
{dedup};

CREATE VIEW IF NOT EXISTS {db}.sla_deadlines_unique AS
SELECT * FROM {db}.sla_deadlines FINAL LIMIT 1 BY event_id, clock;
