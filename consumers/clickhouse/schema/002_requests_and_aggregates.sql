-- The current state of each request, and daily aggregates for dashboards.
--
-- requests is a view folded from events_unique with argMax over event time, so it is always
-- consistent with the raw facts (no second copy to keep in step). daily_counts is filled by a
-- materialized view at insert time; it keeps uniqExact states of event ids, so a batch the sink
-- delivers twice does not change the counts it reports.

CREATE VIEW IF NOT EXISTS {db}.requests AS
SELECT
    request_id,
    minIf(at, kind IN ('RequestSubmitted', 'LetterRegistered')) AS submitted_at,
    anyIf(c, kind IN ('RequestSubmitted', 'LetterRegistered')) AS category,
    anyIf(ch, kind IN ('RequestSubmitted', 'LetterRegistered')) AS channel,
    anyIf(pr, kind IN ('RequestSubmitted', 'LetterRegistered')) AS priority,
    anyIf(p, kind IN ('RequestSubmitted', 'LetterRegistered')) AS submitted_province,
    argMaxIf(p, ms, kind IN ('RequestReferred', 'RequestTransferred')) AS referred_province,
    if(referred_province = '', submitted_province, referred_province) AS province,
    argMaxIf(b, ms, kind IN ('RequestReferred', 'RequestTransferred')) AS body_id,
    argMaxIf(k, ms, kind IN ('RequestReferred', 'RequestTransferred')) AS body_kind,
    argMaxIf(rule, ms, kind = 'RequestReferred') AS rule_id,
    anyIf(jmonth, kind IN ('RequestSubmitted', 'LetterRegistered')) AS jalali_month,
    countIf(kind = 'RequestTransferred') AS transfers,
    countIf(kind = 'RequestResponded') > 0 AS responded,
    minIf(at, kind = 'RequestResponded') AS first_response_at,
    countIf(kind = 'RequestResolved') > 0 AS resolved,
    maxIf(at, kind = 'RequestResolved') AS resolved_at,
    argMaxIf(
        kind,
        ms,
        kind IN (
            'RequestSubmitted', 'LetterRegistered', 'RequestResolved', 'RequestClosed',
            'RequestReopened'
        )
    ) AS last_status_event,
    last_status_event NOT IN ('RequestResolved', 'RequestClosed') AS is_open
FROM (
    SELECT
        request_id,
        event_type AS kind,
        province AS p,
        body_id AS b,
        body_kind AS k,
        category AS c,
        channel AS ch,
        priority AS pr,
        visitParamExtractString(payload, 'rule_id') AS rule,
        occurred_at AS at,
        occurred_ms AS ms,
        jalali_year * 100 + jalali_month AS jmonth
    FROM {db}.events_unique
    WHERE event_type NOT IN (
        'OfficeClosureAnnounced', 'SlaWarning', 'SlaBreached', 'RequestEscalated'
    )
)
GROUP BY request_id
HAVING countIf(kind IN ('RequestSubmitted', 'LetterRegistered')) > 0;

CREATE TABLE IF NOT EXISTS {db}.daily_counts (
    day Date,
    province String,
    event_type String,
    events AggregateFunction(uniqExact, String)
) ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (day, province, event_type);

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.daily_counts_mv TO {db}.daily_counts AS
SELECT
    toDate(occurred_at) AS day,
    province,
    event_type,
    uniqExactState(event_id) AS events
FROM {db}.events
GROUP BY day, province, event_type;
